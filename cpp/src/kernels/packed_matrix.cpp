#include "packed_matrix.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <omp.h>

#include "denormals.hpp"
#include "micro_kernel.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

namespace {

using detail::kLanes;
using detail::Vec;

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define EIGENGRU_HAS_SHUFFLE 1
#endif
#endif
#ifdef EIGENGRU_HAS_SHUFFLE
constexpr bool kHasShuffle = true;
#else
constexpr bool kHasShuffle = false;  // GCC before 12: packs element by element
#endif

#ifdef EIGENGRU_HAS_SHUFFLE
/// One round of an in-register transpose of an L x L tile (v[i] = row i, L = kLanes): every
/// pair of rows (i, i + D) with i & D == 0 swaps its off-diagonal D-wide blocks. The rounds for
/// D = 1, 2, 4, 8 below L together transpose the tile, in any order.
template <typename Scalar, int D, std::size_t... E>
__attribute__((always_inline)) inline void swap_blocks(Vec<Scalar>* v, std::index_sequence<E...>) {
  constexpr int L = static_cast<int>(kLanes<Scalar>);
  for (int i = 0; i < L; ++i) {
    if (i & D) continue;
    const Vec<Scalar> a = v[i], b = v[i + D];
    v[i] = __builtin_shufflevector(a, b, ((E & D) ? L + E - D : E)...);
    v[i + D] = __builtin_shufflevector(a, b, ((E & D) ? L + E : E + D)...);
  }
}

template <typename Scalar>
__attribute__((always_inline)) inline void transpose_tile(Vec<Scalar>* v) {
  constexpr auto lanes = std::make_index_sequence<kLanes<Scalar>>{};
  swap_blocks<Scalar, 1>(v, lanes);
  if constexpr (kLanes<Scalar> > 2) swap_blocks<Scalar, 2>(v, lanes);
  if constexpr (kLanes<Scalar> > 4) swap_blocks<Scalar, 4>(v, lanes);
  if constexpr (kLanes<Scalar> > 8) swap_blocks<Scalar, 8>(v, lanes);
}

/// Panel rows [k0, k0 + L) from a transposed source, B(k, j) = source[k + j * ld], into a
/// panel whose rows are ldb apart: each L x L tile is L contiguous reads of source rows,
/// transposed in registers, L contiguous writes.
/// Columns at or past `width` are written as zeros.
template <typename Scalar>
void pack_transposed_rows(const Scalar* source, Index ld, Index k0, Index width, Scalar* dst,
                          Index ldb) {
  constexpr Index L = kLanes<Scalar>, W = 2 * L;
  for (Index t = 0; t < W; t += L) {
    Vec<Scalar> v[L];
    for (Index i = 0; i < L; ++i)
      v[i] = t + i < width ? detail::load_vector(source + (t + i) * ld + k0) : Vec<Scalar>{};
    transpose_tile<Scalar>(v);
    for (Index i = 0; i < L; ++i) detail::store_vector(dst + (k0 + i) * ldb + t, v[i]);
  }
}
#else
template <typename Scalar>
void pack_transposed_rows(const Scalar*, Index, Index, Index, Scalar*, Index) {}  // never called
#endif

/// Panel p's bias for a kernel, which reads kPanelWidth values: bias + p * kPanelWidth, or for
/// a last panel cut short (B has `cols` columns) a zero-padded copy in `tail`; nullptr without
/// a bias.
template <typename Scalar>
const Scalar* panel_bias(const Scalar* bias, Index cols, Index p, Scalar* tail) {
  constexpr Index W = 2 * kLanes<Scalar>;
  if (bias == nullptr) return nullptr;
  const Index j0 = p * W, ncols = std::min(W, cols - j0);
  if (ncols == W) return bias + j0;
  std::fill(std::copy_n(bias + j0, ncols, tail), tail + W, Scalar(0));
  return tail;
}

}  // namespace

template <typename Scalar>
void PackedMatrix<Scalar>::pack(const Scalar* source, Index rows, Index cols, Index row_stride,
                                Index col_stride, int threads) {
  static_assert(detail::kPanelWidth<Scalar> == 2 * kLanes<Scalar>);
  const Index panels = (cols + detail::kPanelWidth<Scalar> - 1) / detail::kPanelWidth<Scalar>;
  rows_ = cols_ = 0;
  panels_.resize(panels * rows * detail::kPanelWidth<Scalar>);  // every value is written below
  const Index row_bytes = panels * detail::kPanelWidth<Scalar> * static_cast<Index>(sizeof(Scalar));
  narrow_ = row_bytes <= kNarrowRowBytes && rows * row_bytes <= kNarrowMatrixBytes;
  ldb_ = narrow_ ? panels * detail::kPanelWidth<Scalar> : detail::kPanelWidth<Scalar>;
  panel_stride_ = narrow_ ? detail::kPanelWidth<Scalar> : rows * detail::kPanelWidth<Scalar>;
  // A transposed source (a weight matrix used as Wᵀ, row_stride 1) is copied by tiles
  // transposed in registers, reading whole source rows: element by element, the reads stride
  // across rows (the forward of a small layer spent 6 us a call packing, now 2.4). The rows
  // past the last whole tile go one by one.
  const bool transposed = kHasShuffle && row_stride == 1 && col_stride != 1;
  const Index tiled_rows = transposed ? rows / kLanes<Scalar> * kLanes<Scalar> : 0;
  // Extra threads only for a large copy: waking one costs more than copying a small layer's
  // weights, and a batch-1 training call packs its backward's weights while it uses one thread.
  constexpr Index kElementsPerThread = Index{1} << 16;
  threads = static_cast<int>(
      std::clamp<Index>(rows * cols / kElementsPerThread, 1, std::min<Index>(threads, panels)));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (Index p = 0; p < panels; ++p) {
    const Index j0 = p * detail::kPanelWidth<Scalar>;
    const Index width = std::min(detail::kPanelWidth<Scalar>, cols - j0);
    Scalar* dst = panels_.data() + p * panel_stride_;
    for (Index k = 0; k < tiled_rows; k += kLanes<Scalar>)
      pack_transposed_rows(source + j0 * col_stride, col_stride, k, width, dst, ldb_);
    for (Index k = tiled_rows; k < rows; ++k) {
      for (Index j = 0; j < width; ++j)
        dst[k * ldb_ + j] = source[k * row_stride + (j0 + j) * col_stride];
      std::fill(dst + k * ldb_ + width, dst + k * ldb_ + detail::kPanelWidth<Scalar>, Scalar(0));
    }
  }
  rows_ = rows;
  cols_ = cols;
}

// A single row: up to kMaxRowPanels panels at once (balanced groups when there are more), the
// depth reversed with the panel order.
template <typename Scalar>
template <bool kOneChain>
void PackedMatrix<Scalar>::multiply_row(const Scalar* a, Index a_step, Scalar* c, bool accumulate,
                                        const Scalar* bias, bool backwards, Index k_begin,
                                        Index k_end) const noexcept {
  constexpr Index kMax = detail::kMaxRowPanels;
  const Index panels = (cols_ + detail::kPanelWidth<Scalar> - 1) / detail::kPanelWidth<Scalar>;
  if (panels == 0) return;
  const Index groups = (panels + kMax - 1) / kMax;
  const Index last_ncols = cols_ - (panels - 1) * detail::kPanelWidth<Scalar>;
  alignas(64) Scalar bias_tail[detail::kPanelWidth<Scalar>];
  const Scalar* last_bias = panel_bias(bias, cols_, panels - 1, bias_tail);
  for (Index q = 0; q < groups; ++q) {
    const Index g = backwards ? groups - 1 - q : q;
    // One group, the usual case, without the divisions (they cost 30 TSC ticks a product).
    const Index p0 = groups == 1 ? 0 : panels * g / groups;
    const Index p1 = groups == 1 ? panels : panels * (g + 1) / groups;
    const bool ends = p1 == panels;
    const detail::RowOutput<Scalar> out{
        c + p0 * detail::kPanelWidth<Scalar>, ends ? last_ncols : detail::kPanelWidth<Scalar>,
        accumulate, bias == nullptr ? nullptr : bias + p0 * detail::kPanelWidth<Scalar>,
        bias == nullptr ? nullptr
        : ends          ? last_bias
                        : bias + (p1 - 1) * detail::kPanelWidth<Scalar>};
    const Scalar* b = panels_.data() + p0 * panel_stride_ + k_begin * ldb_;
    detail::row_kernel_for<Scalar, kOneChain>(static_cast<int>(p1 - p0), a + k_begin * a_step,
                                              a_step, b, panel_stride_, ldb_, k_end - k_begin,
                                              backwards && !kOneChain, out);
  }
}

// Inlined into both callers: a batch-1 step is short enough for the call's cost to show.
template <typename Scalar>
template <bool kOneChain>
__attribute__((always_inline)) inline void PackedMatrix<Scalar>::multiply_range(
    const Scalar* a, Index lda, Index m, Scalar* c, Index ldc, bool accumulate, Index a_step,
    const Scalar* bias, bool backwards, Index k_begin, Index k_end) const noexcept {
  using detail::kRowBlock;
  if (m == 1)
    return multiply_row<kOneChain>(a, a_step, c, accumulate, bias, backwards, k_begin, k_end);
  const Index panels = (cols_ + detail::kPanelWidth<Scalar> - 1) / detail::kPanelWidth<Scalar>;
  alignas(64) Scalar bias_tail[detail::kPanelWidth<Scalar>];
  auto output = [&](Index p, Scalar* c_row) {
    const Index j0 = p * detail::kPanelWidth<Scalar>,
                ncols = std::min(detail::kPanelWidth<Scalar>, cols_ - j0);
    return detail::Output<Scalar>{c_row + j0, ldc, ncols, accumulate,
                                  panel_bias(bias, cols_, p, bias_tail)};
  };
  // A block of A of at most about 256 KB stays in L2 while every panel of B goes past it; one
  // small product (a GRU step) is a single block. The blocks are of equal sizes in whole row
  // blocks (so that the kernel's row blocks start where they would in one pass): a pass over B
  // for a last few rows would cost as much memory traffic as one for all of them. Panels are
  // streamed whole: the kernel does 16 vector multiply-adds per 128 bytes of B, so hardware
  // prefetching keeps up even from L3 without blocking the depth as well.
  const Index depth = std::max<Index>(1, k_end - k_begin);
  constexpr Index kBlockValues = 256 * 1024 / static_cast<Index>(sizeof(Scalar));
  const Index passes = std::max<Index>(1, (m * depth + kBlockValues - 1) / kBlockValues);
  const Index row_block = ((m + passes - 1) / passes + kRowBlock - 1) / kRowBlock * kRowBlock;
  for (Index r0 = 0; r0 < m; r0 += row_block) {
    const Index r1 = std::min(m, r0 + row_block);
    for (Index q = 0; q < panels; ++q) {
      const Index p = backwards ? panels - 1 - q : q;
      detail::multiply_rows<Scalar, kOneChain>(a + r0 * lda + k_begin * a_step, lda, a_step,
                                               r1 - r0,
                                               panels_.data() + p * panel_stride_ + k_begin * ldb_,
                                               ldb_, k_end - k_begin, output(p, c + r0 * ldc));
    }
  }
}

template <typename Scalar>
void PackedMatrix<Scalar>::multiply(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc,
                                    bool accumulate, Index a_step, const Scalar* bias,
                                    bool backwards) const noexcept {
  multiply_range<false>(a, lda, m, c, ldc, accumulate, a_step, bias, backwards, 0, rows_);
}

template <typename Scalar>
void PackedMatrix<Scalar>::project(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc,
                                   const Scalar* bias) const noexcept {
  multiply_range<true>(a, lda, m, c, ldc, false, 1, bias, false, 0, rows_);
}

template <typename Scalar>
void PackedMatrix<Scalar>::multiply_depth(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc,
                                          bool accumulate, Index k_begin, Index k_end,
                                          bool backwards) const noexcept {
  multiply_range<false>(a, lda, m, c, ldc, accumulate, 1, nullptr, backwards, k_begin, k_end);
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
    const detail::Slice rows = detail::my_share(m, kRowBlock);
    if (rows.size() > 0)
      multiply(a + rows.begin * lda, lda, rows.size(), c + rows.begin * ldc, ldc, accumulate,
               a_step);
  }
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace eigengru::EIGENGRU_KERNEL_SET
