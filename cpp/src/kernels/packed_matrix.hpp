// A matrix packed once for many products with a few rows on its left: the per-step recurrent
// product of a GRU, C (m x N) = A (m x K) * B (K x N), where B is a weight matrix and m is a batch.
#pragma once

#include <Eigen/Core>

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

/// B (K x N) stored as column panels of detail::kPanelWidth columns (the last panel zero-padded). A
/// product streams every panel once from memory and keeps it in cache while all rows of A go
/// past it; nothing is allocated per product.
///
/// Two layouts of the same panels: a wide B stores each panel as K consecutive rows of
/// kPanelWidth values; a narrow B, whose padded rows take at most kNarrowRowBytes and which takes
/// at most kNarrowMatrixBytes whole, stores whole padded rows one after the other (panel p's row
/// k at k * padded N + p * kPanelWidth). A product with a single row (a GRU step at batch 1) then
/// reads B front to back as one stream, which the hardware prefetcher follows best. Products with
/// several rows read each panel once per block of rows, and a narrow panel's rows lie a padded
/// row apart, so they fall into a fraction of the cache's sets: the panel stays in L2 only while
/// the whole matrix would fit there, hence the second bound.
template <typename Scalar>
class PackedMatrix {
 public:
  /// The widest padded row stored row by row: 256 floats (8 panels), 128 doubles. Wider rows
  /// would put each panel's rows too far apart for products with several rows.
  static constexpr Index kNarrowRowBytes = 1024;
  /// The largest B stored row by row: half of a small L2, leaving the rest to A and C.
  static constexpr Index kNarrowMatrixBytes = 256 * 1024;

  PackedMatrix() = default;

  /// Packs B with B(k, j) = source[k * row_stride + j * col_stride]; a transposed or
  /// sub-matrix view is a matter of strides. Reuses its memory when the size is unchanged, else
  /// allocates; copies with up to `threads` threads.
  void pack(const Scalar* source, Index rows, Index cols, Index row_stride, Index col_stride,
            int threads = 1);

  Index rows() const { return rows_; }
  /// Values stored, padding included.
  Index size() const { return static_cast<Index>(panels_.size()); }
  Index cols() const { return cols_; }

  /// Whether B is stored row by row (see above). Then B(k, j) = data()[k * row_stride() + j],
  /// with every row padded with zeros to whole panels: a kernel of its own (the fused batch-1
  /// GRU step) can read B directly.
  bool narrow() const { return narrow_; }
  const Scalar* data() const { return panels_.data(); }
  Index row_stride() const { return ldb_; }

  /// C = A * B, or C += A * B when accumulate, plus the row vector `bias` (cols() values) on
  /// every row when given. A is m x rows() with A(i, k) = a[i * lda + k * a_step] (a_step = 1:
  /// row-major; lda = 1: a transposed view), C is m x cols() with rows ldc apart. Allocates
  /// nothing; C must not overlap A.
  ///
  /// backwards: take the panels last to first, and with a single row (m = 1) the depth last to
  /// first as well. A recurrence that alternates the order from step to step starts each step
  /// on the weights it used last, still in L1 (when they do not all fit). Several rows give the
  /// same result either way, bit for bit; a single row's sums are then added in another order (the
  /// same for the same inputs and `backwards`).
  void multiply(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc, bool accumulate,
                Index a_step = 1, const Scalar* bias = nullptr,
                bool backwards = false) const noexcept;

  /// C = A * B + bias (bias may be nullptr), A row-major with rows lda apart, as multiply()
  /// does, except that every element of C is one chain of multiply-adds over the depth, first to
  /// last: a row of C gets the same bits alone as among any other rows. The input projections
  /// take it, so that a step-by-step run (Stream, GRUCell, a one-step call) repeats a whole
  /// sequence's numbers bit for bit, whatever rows the sequence projected together.
  void project(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc,
               const Scalar* bias) const noexcept;

  /// multiply() over the depth range [k_begin, k_end) only: C (+)= A(:, k_begin:k_end) *
  /// B(k_begin:k_end, :), with `a` still at A's column 0. A recurrence whose hidden units are
  /// split over threads multiplies the state of its own units while it waits for the others'.
  void multiply_depth(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc, bool accumulate,
                      Index k_begin, Index k_end, bool backwards = false) const noexcept;

  /// multiply() with the rows of A and C split over `threads` OpenMP threads. The slices start
  /// on the kernel's row blocks, so every row is computed exactly as by one thread: results do
  /// not depend on the thread count.
  void multiply_parallel(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc, bool accumulate,
                         int threads, Index a_step = 1) const noexcept;

 private:
  /// multiply_range() for m = 1.
  template <bool kOneChain>
  void multiply_row(const Scalar* a, Index a_step, Scalar* c, bool accumulate, const Scalar* bias,
                    bool backwards, Index k_begin, Index k_end) const noexcept;
  template <bool kOneChain>
  void multiply_range(const Scalar* a, Index lda, Index m, Scalar* c, Index ldc, bool accumulate,
                      Index a_step, const Scalar* bias, bool backwards, Index k_begin,
                      Index k_end) const noexcept;

  Index rows_ = 0;
  Index cols_ = 0;
  bool narrow_ = false;
  Index ldb_ = 0;                                    ///< from a panel's row k to its row k + 1
  Index panel_stride_ = 0;                           ///< from panel p to panel p + 1
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> panels_;  ///< aligned; resize() leaves it unset
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET
