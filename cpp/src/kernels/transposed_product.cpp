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

// A thread's rows [m0, m1) of C. For each chunk of the depth, every row block of A is multiplied
// with every panel of B, read in place from B's rows. Two copies keep this in cache:
// - with more than one panel, the row block's chunk of A is copied into a contiguous strip first:
//   read once from rows that can lie 2-4 KB apart (sharing a few L1 sets, and a page each), then
//   reused for every panel;
// - B's last panel, when n is not a whole number of panels, is copied zero-padded, since the
//   kernel reads whole panels.
template <typename Scalar>
void add_rows(const Scalar* a, Index lda, Index m0, Index m1, const Scalar* b, Index ldb, Index n,
              Index depth, Scalar* c, Index ldc) {
  constexpr Index W = kPanelWidth<Scalar>;
  const Index panels = (n + W - 1) / W, full_panels = n / W;
  alignas(64) Scalar a_strip[kDepthPerPass * kRowBlock];
  alignas(64) Scalar b_tail[kDepthPerPass * W];
  for (Index k0 = 0; k0 < depth; k0 += kDepthPerPass) {
    const Index d = std::min(kDepthPerPass, depth - k0);
    if (full_panels < panels) {
      const Index width = n - full_panels * W;
      for (Index k = 0; k < d; ++k) {
        const Scalar* src = b + (k0 + k) * ldb + full_panels * W;
        std::copy_n(src, width, b_tail + k * W);
        std::fill(b_tail + k * W + width, b_tail + (k + 1) * W, Scalar(0));
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
        const bool tail = p == full_panels;
        const Scalar* panel = tail ? b_tail : b + k0 * ldb + p * W;
        const Output<Scalar> out{c + i * ldc + p * W, ldc, tail ? n - p * W : W, true};
        multiply_rows<Scalar>(a_block, 1, a_step, rows, panel, tail ? W : ldb, d, out);
      }
    }
  }
}

}  // namespace

template <typename Scalar>
void add_transposed_product(const Scalar* a, Index lda, Index m, const Scalar* b, Index ldb,
                            Index n, Index depth, Scalar* c, Index ldc, int threads) noexcept {
  const Index blocks = (m + kRowBlock - 1) / kRowBlock;
  threads = static_cast<int>(std::clamp<Index>(blocks, 1, threads));
  if (threads == 1) {  // no OpenMP region: even a serial one allocates its team
    const FlushDenormals flush;
    add_rows(a, lda, 0, m, b, ldb, n, depth, c, ldc);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const FlushDenormals flush;
    const Slice rows = my_share(m, kRowBlock);
    if (rows.size() > 0) add_rows(a, lda, rows.begin, rows.end, b, ldb, n, depth, c, ldc);
  }
}

template void add_transposed_product<float>(const float*, Index, Index, const float*, Index, Index,
                                            Index, float*, Index, int) noexcept;
template void add_transposed_product<double>(const double*, Index, Index, const double*, Index,
                                             Index, Index, double*, Index, int) noexcept;

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
