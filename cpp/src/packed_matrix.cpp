#include "eigengru/packed_matrix.hpp"

#include <algorithm>
#include <cstring>

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
template <typename Scalar, int MR, int KU>
void micro_kernel(const Scalar* a, Index lda, const Scalar* panel, Index depth, Scalar* c,
                  Index ldc, Index ncols, bool accumulate) {
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
        const Scalar ai = a[i * lda + k + u];
        acc[u][i][0] += ai * b0;
        acc[u][i][1] += ai * b1;
      }
    }
  }
  for (; k < depth; ++k) {
    const Vec<Scalar> b0 = load(panel + k * W);
    const Vec<Scalar> b1 = load(panel + k * W + L);
    for (int i = 0; i < MR; ++i) {
      const Scalar ai = a[i * lda + k];
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
void kernel_for_rows(const Scalar* a, Index lda, const Scalar* panel, Index depth, Scalar* c,
                     Index ldc, Index ncols, bool accumulate) {
  constexpr int KU = MR >= 4 ? 1 : (MR == 1 ? 4 : 2);
  micro_kernel<Scalar, MR, KU>(a, lda, panel, depth, c, ldc, ncols, accumulate);
}

}  // namespace

template <typename Scalar>
void PackedMatrix<Scalar>::pack(const Scalar* source, Index rows, Index cols, Index row_stride,
                                Index col_stride) {
  const Index panels = (cols + kPanelWidth - 1) / kPanelWidth;
  std::vector<Scalar, Eigen::aligned_allocator<Scalar>> packed(
      static_cast<std::size_t>(panels * rows * kPanelWidth), Scalar(0));
  for (Index p = 0; p < panels; ++p) {
    const Index j0 = p * kPanelWidth;
    const Index width = std::min(kPanelWidth, cols - j0);
    Scalar* dst = packed.data() + p * rows * kPanelWidth;
    for (Index k = 0; k < rows; ++k)
      for (Index j = 0; j < width; ++j)
        dst[k * kPanelWidth + j] = source[k * row_stride + (j0 + j) * col_stride];
  }
  panels_.swap(packed);
  rows_ = rows;
  cols_ = cols;
}

template <typename Scalar>
void PackedMatrix<Scalar>::multiply(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc,
                                    bool accumulate) const noexcept {
  constexpr Index kRowBlock = 6;  // 6 rows x 2 vectors = 12 accumulators of the 32 registers
  const Index panels = (cols_ + kPanelWidth - 1) / kPanelWidth;
  // Panel-outer order: each panel of B is read from memory once per product and reused from
  // cache by every row block of A.
  for (Index p = 0; p < panels; ++p) {
    const Scalar* panel = panels_.data() + p * rows_ * kPanelWidth;
    const Index j0 = p * kPanelWidth;
    const Index ncols = std::min(kPanelWidth, cols_ - j0);
    Index i = 0;
    for (; i + kRowBlock <= m; i += kRowBlock)
      kernel_for_rows<Scalar, kRowBlock>(a + i * lda, lda, panel, rows_, c + i * ldc + j0, ldc,
                                         ncols, accumulate);
    const Scalar* ai = a + i * lda;
    Scalar* ci = c + i * ldc + j0;
    switch (m - i) {
      case 5: kernel_for_rows<Scalar, 5>(ai, lda, panel, rows_, ci, ldc, ncols, accumulate); break;
      case 4: kernel_for_rows<Scalar, 4>(ai, lda, panel, rows_, ci, ldc, ncols, accumulate); break;
      case 3: kernel_for_rows<Scalar, 3>(ai, lda, panel, rows_, ci, ldc, ncols, accumulate); break;
      case 2: kernel_for_rows<Scalar, 2>(ai, lda, panel, rows_, ci, ldc, ncols, accumulate); break;
      case 1: kernel_for_rows<Scalar, 1>(ai, lda, panel, rows_, ci, ldc, ncols, accumulate); break;
      default: break;
    }
  }
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace eigengru
