// The long reductions of backward: every weight gradient is a sum over all steps and batch rows,
// dW += Dᵀ X, with D the gate gradients (T*B x 3H) and X the inputs or states (T*B x I or H).
#pragma once

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// C (m x n) += Aᵀ B, where A (depth x m) and B (depth x n) are row-major with row strides lda
/// and ldb, and C has rows ldc apart. Neither operand is copied whole: the depth is taken in
/// chunks that stay in cache, and each thread owns whole rows of C, so results do not depend on
/// the thread count. Allocates nothing.
template <typename Scalar>
void add_transposed_product(const Scalar* a, Index lda, Index m, const Scalar* b, Index ldb,
                            Index n, Index depth, Scalar* c, Index ldc, int threads) noexcept;

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
