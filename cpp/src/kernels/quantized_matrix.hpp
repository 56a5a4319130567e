// A quantized weight matrix packed for the CPU's dot-product instructions, its operands
// quantized row by row, and the products of the two (see eigengru/quantized.hpp for the
// arithmetic).
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "eigengru/quantized.hpp"
#include "matrix_types.hpp"
#include "packed_matrix.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// Output rows per panel: the sixteen 32-bit sums of one 512-bit register.
constexpr Index kQuantizedPanelRows = 16;
/// Bytes of one 32-bit lane of a panel: a group of 4 int8 values or 2 bfloat16.
constexpr Index kGroupBytes = 4;
/// Bytes of one group of a panel's 16 rows: one 512-bit vector.
constexpr Index kPanelGroupBytes = kQuantizedPanelRows * kGroupBytes;

/// Bytes with the alignment of a vector register.
using AlignedBytes = std::vector<std::uint8_t, Eigen::aligned_allocator<std::uint8_t>>;

/// Rows of an operand quantized for products with a QuantizedPanels of the same precision:
/// bfloat16 (under avx2 the values as floats, which its kernel broadcasts as they are), or int8
/// with one scale per row, stored as unsigned bytes q + 128 for AVX-512 VNNI
/// and as q itself for the avx2 set (kInt8OperandZero, quantized_dot.hpp); each row padded with
/// zeros (q = 0) to the panels' depth.
struct QuantizedRows {
  AlignedBytes data;
  std::vector<float> scales;  // int8 only
  Index stride = 0;           // bytes between rows
  /// Without a dot-product kernel: the values the quantized rows stand for, as floats,
  /// depth() apart (and nothing else above).
  std::vector<float> values;
};

/// W (N x K) quantized, stored as panels of kQuantizedPanelRows rows: panel p holds, for each
/// group of `group` consecutive columns k (4 int8 values or 2 bfloat16, one 32-bit lane), the
/// group of each of its 16 rows, so that one 512-bit load gives a dot-product instruction all
/// 16 rows' weights for that group. Rows past N and columns past K are zero. Panels start an
/// odd number of cache lines apart: a product reads several panels side by side, and streams a
/// power-of-two distance apart would all fall in the same sets of the L1 cache.
class QuantizedPanels {
 public:
  QuantizedPanels() = default;
  /// Rows [first, first + count) of m, in order.
  QuantizedPanels(const QuantizedMatrix& m, Index first, Index count);

  Precision precision() const { return precision_; }
  Index rows() const { return rows_; }
  Index depth() const { return depth_; }
  /// Bytes of an operand row: the depth padded to whole groups (bfloat16 under avx2: as floats).
  Index row_bytes() const {
#if defined(__AVX2__) && !defined(__AVX512F__)
    if (precision_ == Precision::kBfloat16) return groups_ * 2 * Index{sizeof(float)};
#endif
    return groups_ * kGroupBytes;
  }

  /// Sizes `rows` for n operand rows (allocates once; later calls with n no larger do not).
  void reserve(QuantizedRows& rows, Index n) const;
  /// Quantizes n rows of a (depth() values each, lda apart) into rows [first, first + n) of
  /// `rows`, which reserve() sized.
  void quantize(const float* a, Index lda, Index n, QuantizedRows& rows,
                Index first = 0) const noexcept;
  /// C (n x rows()) = A · Wᵀ (+ bias, rows() values, on every row), rows ldc apart; A is the
  /// n rows that quantize() made. Row i of C depends on row i of A only.
  void multiply(const QuantizedRows& a, Index n, float* c, Index ldc,
                const float* bias) const noexcept;

  /// The kernel that multiply() runs for this precision in this kernel set.
  static const char* kernel(Precision precision);

  // The panels themselves, for kernels that fuse other work with a product (dot_product() only).
  /// Whether this kernel set on this CPU has a dot-product kernel for the precision (AVX-512
  /// VNNI or BF16, or the avx2 set's own products); without one, products are the float
  /// kernel's on the values the weights and operands stand for, and there are no panels.
  bool dot_product() const { return dot_product_; }
  Index groups() const { return groups_; }
  Index panel_bytes() const { return (groups_ | 1) * 64; }
  /// Panel p: groups() groups of kPanelGroupBytes, rows 16p to 16p + 15.
  const std::uint8_t* panel(Index p) const { return panels_.data() + p * panel_bytes(); }
  /// int8: panel p's 16 rows' scales and offsets.
  const float* scales(Index p) const { return scales_.data() + p * kQuantizedPanelRows; }
  const std::int32_t* offsets(Index p) const { return offsets_.data() + p * kQuantizedPanelRows; }

 private:
  Precision precision_ = Precision::kInt8;
  bool dot_product_ = false;

  Index rows_ = 0, depth_ = 0, groups_ = 0, panels_count_ = 0;
  Index row_block_ = 1, row_chunk_ = 1;  // the product's blocking (quantized_matrix.cpp)
  AlignedBytes panels_;                  // panels_count_ * panel_bytes()
  std::vector<float> scales_;          // int8: the rows' scales, padded with zeros to whole panels
  std::vector<std::int32_t> offsets_;  // int8: kInt8OperandZero * (the row's sum)
  PackedMatrix<float> dequantized_;    // Wᵀ of the values, without a dot-product kernel
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
