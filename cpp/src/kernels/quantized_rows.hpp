// The operand rows of the quantized products: each row of an input or a state quantized as
// the product runs (eigengru/quantized.hpp has the arithmetic), in the form the kernel set's
// product takes.
#pragma once

#include <cstdint>

#include "eigengru/quantized.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

#if defined(__AVX512F__) || defined(__AVX2__)
/// x (K values) as int8 operand bytes, q + kInt8OperandZero (quantized_dot.hpp: q + 128 for
/// VNNI, q itself under avx2), zero-padded (q = 0) to `padded`; returns the row's scale.
float int8_row(const float* x, Index K, Index padded, std::uint8_t* dst);

#if defined(__AVX512F__)
/// x (K values) as bfloat16 operand values (to_bfloat16), zero-padded to `padded`.
void bfloat16_row(const float* x, Index K, Index padded, std::uint8_t* bytes);
#elif defined(__AVX2__)
/// x (K values) rounded to bfloat16 (to_bfloat16) and widened back to floats, zero-padded to
/// `padded`: the avx2 set's bfloat16 operand rows.
void bfloat16_value_row(const float* x, Index K, Index padded, float* dst);
#endif
#endif

/// The values an operand row x (K values) stands for once quantized, as floats: the operand
/// of the products without a dot-product kernel.
void value_row(Precision precision, const float* x, Index K, float* dst);

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
