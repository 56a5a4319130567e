#include "eigengru/packed_matrix.hpp"

#include <algorithm>
#include <cstring>

#include <omp.h>

#include "denormals.hpp"

namespace eigengru {
namespace {

// GCC/Clang vector extensions: one 64-byte register on AVX-512, split by the compiler elsewhere,
// so the portable build stays correct. The aligned(...) attribute allows unaligned loads.
template <typename Scalar>
struct VectorOf;
template <>
struct VectorOf<float> {
  typedef float type __attribute__((vector_size(64), aligned(4)));
};
template <>
struct VectorOf<double> {
  typedef double type __attribute__((vector_size(64), aligned(8)));
};
template <typename Scalar>
using Vec = typename VectorOf<Scalar>::type;

template <typename Scalar>
constexpr Index kLanes = 64 / static_cast<Index>(sizeof(Scalar));

template <typename Scalar>
inline Vec<Scalar> load(const Scalar* p) {
  Vec<Scalar> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename Scalar>
inline void store(Scalar* p, const Vec<Scalar>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// C rows [0, MR) x panel columns [0, ncols) (+)= A rows [0, MR) x panel.
// The accumulators are split KU ways over k so that even one row keeps enough independent
// multiply-add chains in flight to hide their latency; the KU partial sums are added in a fixed
// order, so results do not depend on anything but the inputs.
template <typename Scalar, int MR, int KU, bool kUnitStep>
void micro_kernel(const Scalar* a, Index lda, Index a_step, const Scalar* panel, Index depth,
                  Scalar* c, Index ldc, Index ncols, bool accumulate) {
  const Index step = kUnitStep ? 1 : a_step;
  constexpr Index L = kLanes<Scalar>;
  constexpr Index W = PackedMatrix<Scalar>::kPanelWidth;
  Vec<Scalar> acc[KU][MR][2];
  for (int u = 0; u < KU; ++u)
    for (int i = 0; i < MR; ++i) acc[u][i][0] = acc[u][i][1] = Vec<Scalar>{};

  Index k = 0;
  for (; k + KU <= depth; k += KU) {
    for (int u = 0; u < KU; ++u) {
      const Vec<Scalar> b0 = load(panel + (k + u) * W);
      const Vec<Scalar> b1 = load(panel + (k + u) * W + L);
      for (int i = 0; i < MR; ++i) {
        const Scalar ai = a[i * lda + (k + u) * step];
        acc[u][i][0] += ai * b0;
        acc[u][i][1] += ai * b1;
      }
    }
  }
  for (; k < depth; ++k) {
    const Vec<Scalar> b0 = load(panel + k * W);
    const Vec<Scalar> b1 = load(panel + k * W + L);
    for (int i = 0; i < MR; ++i) {
      const Scalar ai = a[i * lda + k * step];
      acc[0][i][0] += ai * b0;
      acc[0][i][1] += ai * b1;
    }
  }
  for (int u = 1; u < KU; ++u)
    for (int i = 0; i < MR; ++i) {
      acc[0][i][0] += acc[u][i][0];
      acc[0][i][1] += acc[u][i][1];
    }

  for (int i = 0; i < MR; ++i) {
    Scalar* row = c + i * ldc;
    if (ncols == W) {
      Vec<Scalar> v0 = acc[0][i][0], v1 = acc[0][i][1];
      if (accumulate) {
        v0 += load(row);
        v1 += load(row + L);
      }
      store(row, v0);
      store(row + L, v1);
    } else {
      alignas(64) Scalar tmp[W];
      store(tmp, acc[0][i][0]);
      store(tmp + L, acc[0][i][1]);
      for (Index j = 0; j < ncols; ++j) row[j] = accumulate ? row[j] + tmp[j] : tmp[j];
    }
  }
}

template <typename Scalar, int MR>
void kernel_for_rows(const Scalar* a, Index lda, Index a_step, const Scalar* panel, Index depth,
                     Scalar* c, Index ldc, Index ncols, bool accumulate) {
  constexpr int KU = MR >= 4 ? 1 : (MR == 1 ? 4 : 2);
  if (a_step == 1)
    micro_kernel<Scalar, MR, KU, true>(a, lda, 1, panel, depth, c, ldc, ncols, accumulate);
  else
    micro_kernel<Scalar, MR, KU, false>(a, lda, a_step, panel, depth, c, ldc, ncols, accumulate);
}

}  // namespace

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
                                    bool accumulate, Index a_step) const noexcept {
  constexpr Index kRowBlock = 6;  // 6 rows x 2 vectors = 12 accumulators of the 32 registers
  // A block of A of about 256 KB stays in L2 while every panel of B goes past it; one small
  // product (a GRU step) is a single block. Panels are streamed whole: the kernel does 12
  // multiply-adds per 128 bytes of B, so hardware prefetching keeps up even from L3, and
  // blocking the depth as well measured no faster.
  const Index row_block = std::max<Index>(
      kRowBlock, 256 * 1024 / static_cast<Index>(sizeof(Scalar)) / std::max<Index>(1, rows_) /
                     kRowBlock * kRowBlock);
  const Index panels = (cols_ + kPanelWidth - 1) / kPanelWidth;
  for (Index r0 = 0; r0 < m; r0 += row_block) {
    const Index r1 = std::min(m, r0 + row_block);
    for (Index p = 0; p < panels; ++p) {
      const Scalar* panel = panels_.data() + p * rows_ * kPanelWidth;
      const Index j0 = p * kPanelWidth;
      const Index ncols = std::min(kPanelWidth, cols_ - j0);
      Index i = r0;
      for (; i + kRowBlock <= r1; i += kRowBlock)
        kernel_for_rows<Scalar, kRowBlock>(a + i * lda, lda, a_step, panel, rows_,
                                           c + i * ldc + j0, ldc, ncols, accumulate);
      const Scalar* ai = a + i * lda;
      Scalar* ci = c + i * ldc + j0;
      switch (r1 - i) {
        case 5: kernel_for_rows<Scalar, 5>(ai, lda, a_step, panel, rows_, ci, ldc, ncols, accumulate); break;
        case 4: kernel_for_rows<Scalar, 4>(ai, lda, a_step, panel, rows_, ci, ldc, ncols, accumulate); break;
        case 3: kernel_for_rows<Scalar, 3>(ai, lda, a_step, panel, rows_, ci, ldc, ncols, accumulate); break;
        case 2: kernel_for_rows<Scalar, 2>(ai, lda, a_step, panel, rows_, ci, ldc, ncols, accumulate); break;
        case 1: kernel_for_rows<Scalar, 1>(ai, lda, a_step, panel, rows_, ci, ldc, ncols, accumulate); break;
        default: break;
      }
    }
  }
}

template <typename Scalar>
void PackedMatrix<Scalar>::multiply_parallel(const Scalar* a, Index lda, Index m, Scalar* c,
                                             Index ldc, bool accumulate, int threads,
                                             Index a_step) const noexcept {
  const Index blocks = (m + 5) / 6;  // slices start on the kernel's 6-row blocks
  threads = static_cast<int>(std::clamp<Index>(blocks, 1, threads));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const detail::FlushDenormals flush;
    const Index t = omp_get_thread_num(), n = omp_get_num_threads();
    const Index r0 = std::min(m, blocks * t / n * 6), r1 = std::min(m, blocks * (t + 1) / n * 6);
    if (r1 > r0) multiply(a + r0 * lda, lda, r1 - r0, c + r0 * ldc, ldc, accumulate, a_step);
  }
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace eigengru
