#include "eigengru/packed_matrix.hpp"

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "denormals.hpp"
#include "micro_kernel.hpp"

namespace eigengru {

template <typename Scalar>
void PackedMatrix<Scalar>::pack(const Scalar* source, Index rows, Index cols, Index row_stride,
                                Index col_stride, int threads) {
  const Index panels = (cols + kPanelWidth - 1) / kPanelWidth;
  rows_ = cols_ = 0;
  panels_.resize(static_cast<std::size_t>(panels * rows * kPanelWidth));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (Index p = 0; p < panels; ++p) {
    const Index j0 = p * kPanelWidth;
    const Index width = std::min(kPanelWidth, cols - j0);
    Scalar* dst = panels_.data() + p * rows * kPanelWidth;
    for (Index k = 0; k < rows; ++k) {
      for (Index j = 0; j < width; ++j)
        dst[k * kPanelWidth + j] = source[k * row_stride + (j0 + j) * col_stride];
      std::fill(dst + k * kPanelWidth + width, dst + (k + 1) * kPanelWidth, Scalar(0));
    }
  }
  rows_ = rows;
  cols_ = cols;
}

template <typename Scalar>
void PackedMatrix<Scalar>::multiply(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc,
                                    bool accumulate, Index a_step, const Scalar* bias,
                                    bool backwards) const noexcept {
  using detail::kRowBlock;
  // A block of A of about 256 KB stays in L2 while every panel of B goes past it; one small
  // product (a GRU step) is a single block. Panels are streamed whole: the kernel does 16
  // vector multiply-adds per 128 bytes of B, so hardware prefetching keeps up even from L3, and
  // blocking the depth as well measured no faster.
  const Index row_block = std::max<Index>(
      kRowBlock, 256 * 1024 / static_cast<Index>(sizeof(Scalar)) / std::max<Index>(1, rows_) /
                     kRowBlock * kRowBlock);
  const Index panels = (cols_ + kPanelWidth - 1) / kPanelWidth;
  alignas(64) Scalar bias_tail[kPanelWidth] = {};  // the last panel's bias, zero-padded
  for (Index r0 = 0; r0 < m; r0 += row_block) {
    const Index r1 = std::min(m, r0 + row_block);
    for (Index q = 0; q < panels; ++q) {
      const Index p = backwards ? panels - 1 - q : q;
      const Index j0 = p * kPanelWidth;
      const Index ncols = std::min(kPanelWidth, cols_ - j0);
      const Scalar* panel_bias = bias == nullptr ? nullptr : bias + j0;
      if (bias != nullptr && ncols < kPanelWidth) {
        std::copy_n(bias + j0, ncols, bias_tail);
        panel_bias = bias_tail;
      }
      detail::multiply_rows<Scalar>(a + r0 * lda, lda, a_step, r1 - r0,
                                    panels_.data() + p * rows_ * kPanelWidth, kPanelWidth, rows_,
                                    {c + r0 * ldc + j0, ldc, ncols, accumulate, panel_bias});
    }
  }
}

template <typename Scalar>
void PackedMatrix<Scalar>::multiply_parallel(const Scalar* a, Index lda, Index m, Scalar* c,
                                             Index ldc, bool accumulate, int threads,
                                             Index a_step) const noexcept {
  constexpr Index kRowBlock = detail::kRowBlock;  // slices start on the kernel's row blocks
  const Index blocks = (m + kRowBlock - 1) / kRowBlock;
  threads = static_cast<int>(std::clamp<Index>(blocks, 1, threads));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const detail::FlushDenormals flush;
    const Index t = omp_get_thread_num(), n = omp_get_num_threads();
    const Index r0 = std::min(m, blocks * t / n * kRowBlock);
    const Index r1 = std::min(m, blocks * (t + 1) / n * kRowBlock);
    if (r1 > r0) multiply(a + r0 * lda, lda, r1 - r0, c + r0 * ldc, ldc, accumulate, a_step);
  }
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace eigengru
