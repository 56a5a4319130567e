#include "transposed_product.hpp"

#include <omp.h>

#include <algorithm>

#include "denormals.hpp"
#include "micro_kernel.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {
namespace {

/// Rows of the depth per pass: enough for the kernel's accumulators to pay off, few enough for a
/// row block's strip and a panel to stay in L1.
constexpr Index kDepthPerPass = 128;

/// Elements of one thread's scratch: a chunk of the depth of B, packed into whole panels.
template <typename Scalar>
Index thread_scratch(Index n) {
  constexpr Index W = kPanelWidth<Scalar>;
  return kDepthPerPass * (n + W - 1) / W * W;
}

// A thread's rows [m0, m1) of C. For each chunk of the depth, B's rows are packed into panels
// in `packed` (thread_scratch), then every row block of A is multiplied with every panel. B's
// rows can lie kilobytes apart, so a panel read in place from them (one short row each) reaches
// a new page every row or two; packed, each panel is one stream, and the last one zero-padded as
// the kernel needs. With more than one panel, the row block's chunk of A is copied into a
// contiguous strip first, for the same reason, then reused for every panel.
template <typename Scalar>
void add_rows(const Scalar* a, Index lda, Index m0, Index m1, const Scalar* b, Index ldb, Index n,
              Index depth, Scalar* c, Index ldc, Scalar* packed) {
  constexpr Index W = kPanelWidth<Scalar>;
  const Index panels = (n + W - 1) / W;
  alignas(64) Scalar a_strip[kDepthPerPass * kRowBlock];
  for (Index k0 = 0; k0 < depth; k0 += kDepthPerPass) {
    const Index d = std::min(kDepthPerPass, depth - k0);
    for (Index p = 0; p < panels; ++p) {  // panel p: d rows of W, at packed + p * d * W
      const Index width = std::min(W, n - p * W);
      Scalar* panel = packed + p * d * W;
      for (Index k = 0; k < d; ++k) {
        const Scalar* src = b + (k0 + k) * ldb + p * W;
        if (width == W) {  // a fixed-size copy: whole vector moves
          for (Index j = 0; j < W; ++j) panel[k * W + j] = src[j];
        } else {
          std::copy_n(src, width, panel + k * W);
          std::fill(panel + k * W + width, panel + (k + 1) * W, Scalar(0));
        }
      }
    }
    for (Index i = m0; i < m1; i += kRowBlock) {
      const Index rows = std::min(kRowBlock, m1 - i);
      const Scalar* a_block = a + k0 * lda + i;  // A(i + r, k0 + k) = a_block[r + k * a_step]
      Index a_step = lda;
      if (panels > 1) {
        if (rows == kRowBlock)  // a fixed-size copy: one vector move per row of A
          for (Index k = 0; k < d; ++k)
            for (Index r = 0; r < kRowBlock; ++r) a_strip[k * kRowBlock + r] = a_block[k * lda + r];
        else
          for (Index k = 0; k < d; ++k)
            std::copy_n(a_block + k * lda, rows, a_strip + k * kRowBlock);
        a_block = a_strip;
        a_step = kRowBlock;
      }
      for (Index p = 0; p < panels; ++p) {
        const Output<Scalar> out{c + i * ldc + p * W, ldc, std::min(W, n - p * W), true};
        multiply_rows<Scalar>(a_block, 1, a_step, rows, packed + p * d * W, W, d, out);
      }
    }
  }
}

}  // namespace

template <typename Scalar>
Index transposed_product_scratch(Index n, int threads) {
  return std::max(1, threads) * thread_scratch<Scalar>(n);
}

template <typename Scalar>
void add_transposed_product(const Scalar* a, Index lda, Index m, const Scalar* b, Index ldb,
                            Index n, Index depth, Scalar* c, Index ldc, int threads,
                            Scalar* scratch) noexcept {
  const Index blocks = (m + kRowBlock - 1) / kRowBlock;
  threads = static_cast<int>(std::clamp<Index>(blocks, 1, threads));
  if (threads == 1) {  // no OpenMP region: even a serial one allocates its team
    const FlushDenormals flush;
    add_rows(a, lda, 0, m, b, ldb, n, depth, c, ldc, scratch);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const FlushDenormals flush;
    const Slice rows = my_share(m, kRowBlock);
    Scalar* mine = scratch + omp_get_thread_num() * thread_scratch<Scalar>(n);
    if (rows.size() > 0) add_rows(a, lda, rows.begin, rows.end, b, ldb, n, depth, c, ldc, mine);
  }
}

template Index transposed_product_scratch<float>(Index, int);
template Index transposed_product_scratch<double>(Index, int);
template void add_transposed_product<float>(const float*, Index, Index, const float*, Index, Index,
                                            Index, float*, Index, int, float*) noexcept;
template void add_transposed_product<double>(const double*, Index, Index, const double*, Index,
                                             Index, Index, double*, Index, int, double*) noexcept;

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
