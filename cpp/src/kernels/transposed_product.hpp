// The long reductions of backward: every weight gradient is a sum over all steps and batch rows,
// dW += Dᵀ X, with D the gate gradients (T*B x 3H) and X the inputs or states (T*B x I or H).
#pragma once

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// Elements of the scratch that add_transposed_product needs for n columns on up to `threads`
/// threads: each thread packs a chunk of the depth of B there.
template <typename Scalar>
Index transposed_product_scratch(Index n, int threads);

/// C (m x n) += Aᵀ B, where A (depth x m) and B (depth x n) are row-major with row strides lda
/// and ldb, and C has rows ldc apart. Neither operand is copied whole: the depth is taken in
/// chunks that stay in cache, and each thread owns whole rows of C, so results do not depend on
/// the thread count. Allocates nothing: `scratch` holds transposed_product_scratch(n, threads)
/// elements.
template <typename Scalar>
void add_transposed_product(const Scalar* a, Index lda, Index m, const Scalar* b, Index ldb,
                            Index n, Index depth, Scalar* c, Index ldc, int threads,
                            Scalar* scratch) noexcept;

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
