// The dot-product instructions of the quantized products and the one arithmetic that turns a
// panel's sums into floats: shared by the tiled products (quantized_matrix.cpp) and the fused
// batch-1 step (quantized_row_step.cpp), which must give the same values bit for bit. AVX-512
// has the instructions (VNNI, BF16) on the CPUs that have them; AVX2 builds int8 dot products
// from two multiplies, with the same int32 sums, and bfloat16 ones from float multiply-adds on
// the weights widened in registers, which read half the bytes of float weights.
#pragma once

#include <cstdint>

#include "micro_kernel.hpp"
#include "quantized_matrix.hpp"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>

#include <cstring>
#endif

#if defined(__AVX512F__)
namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// What an int8 operand byte holds: q + 128, the unsigned operand of vpdpbusd.
constexpr std::uint8_t kInt8OperandZero = 128;

// The dot products in inline assembly with the sum tied to its register (the weights from a
// register or, used once, straight from memory): from the intrinsics, GCC copied every sum to
// another register and back at each step of the depth loop, and spilled some. The assembler,
// not the compiler, needs the instructions, so the callers take no target attributes.
template <bool kInt8>
__attribute__((always_inline)) inline __m512i add_dot(__m512i sum, __m512i a, __m512i w) {
  if constexpr (kInt8)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(sum) : "v"(a), "vm"(w));
  else
    __asm__("vdpbf16ps %2, %1, %0" : "+v"(sum) : "v"(a), "vm"(w));
  return sum;
}

/// Group g of an operand row (4 bytes), in every lane.
__attribute__((always_inline)) inline __m512i broadcast_group(const std::uint8_t* row, Index g) {
  std::int32_t group;
  std::memcpy(&group, row + g * kGroupBytes, sizeof group);
  return _mm512_set1_epi32(group);
}

/// What a panel's int8 sums are scaled by: its 16 rows' scales and offsets (nothing for
/// bfloat16), loaded once for all the operand rows that go past the panel.
struct PanelRows {
  __m512 w_scale;
  __m512i offset;
};

template <bool kInt8>
__attribute__((always_inline)) inline PanelRows panel_rows(const float* w_scales,
                                                           const std::int32_t* offsets) {
  if constexpr (kInt8)
    return {_mm512_loadu_ps(w_scales), _mm512_loadu_si512(offsets)};
  else
    return {_mm512_setzero_ps(), _mm512_setzero_si512()};
}

/// A panel's 16 sums as floats: int8 sums (int32) as (sum - offset) * (w_scale * a_scale) +
/// bias, bfloat16 sums (float) + bias.
template <bool kInt8>
__attribute__((always_inline)) inline __m512 panel_sums(__m512i sum, const PanelRows& rows,
                                                        float a_scale, __m512 bias) {
  if constexpr (kInt8) {
    const __m512 scale = _mm512_mul_ps(rows.w_scale, _mm512_set1_ps(a_scale));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum, rows.offset)), scale, bias);
  } else {
    return _mm512_add_ps(_mm512_castsi512_ps(sum), bias);
  }
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail

#elif defined(__AVX2__)
namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// What an int8 operand byte holds: q itself, a signed byte (see add_int8_dot).
constexpr std::uint8_t kInt8OperandZero = 0;

/// sum + the dot products of each 4-byte group of operand a (signed, magnitude |a|) with the
/// same group of weights w, as VNNI's vpdpbusd gives them for the operand a + 128 less the
/// offset. AVX2 has vpmaddubsw (unsigned by signed bytes, pairs summed to int16 with
/// saturation) and vpmaddwd (pairs of int16 summed to int32, here with `ones`): the operand's
/// sign moves onto the weights, so that each pair sums at most 2 * 127 * 127 and never
/// saturates (the int8 values are in [-127, 127]), and the int32 sums are exact. In inline
/// assembly, as the AVX-512 dot products: from the intrinsics GCC copied sums between
/// registers, spilled some and loaded the weights twice.
__attribute__((always_inline)) inline __m256i add_int8_dot(__m256i sum, __m256i magnitude,
                                                           __m256i a, __m256i w, __m256i ones) {
  __m256i t;
  __asm__(
      "vpsignb %[a], %[w], %[t]\n\t"
      "vpmaddubsw %[t], %[magnitude], %[t]\n\t"
      "vpmaddwd %[ones], %[t], %[t]\n\t"
      "vpaddd %[t], %[sum], %[sum]"
      : [sum] "+x"(sum), [t] "=&x"(t)
      : [magnitude] "x"(magnitude), [a] "x"(a), [w] "x"(w), [ones] "x"(ones));
  return sum;
}

/// Group g of an operand row (4 bytes), in every lane.
__attribute__((always_inline)) inline __m256i broadcast_group(const std::uint8_t* row, Index g) {
  std::int32_t group;
  std::memcpy(&group, row + g * kGroupBytes, sizeof group);
  return _mm256_set1_epi32(group);
}

/// 8 of a panel's int8 sums as floats: sum * (w_scale * a_scale) + bias, the arithmetic of the
/// AVX-512 kernels lane for lane.
__attribute__((always_inline)) inline __m256 int8_sums(__m256i sum, __m256 w_scale, float a_scale,
                                                       __m256 bias) {
  const __m256 scale = _mm256_mul_ps(w_scale, _mm256_set1_ps(a_scale));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, bias);
}

/// The depth groups of bfloat16 products summed in one chain: kDepthBlock values, as the float
/// kernel sums a product's depth (micro_kernel.hpp).
constexpr Index kBfloat16BlockGroups = kDepthBlock / 2;

/// A group of two bfloat16 weights (the even depth in a 32-bit lane's low half, the odd one in
/// its high half) as two vectors of floats, exactly: a bfloat16 is a float's upper 16 bits.
struct Bfloat16Pair {
  __m256 even, odd;
};

/// The even weights of 8 groups: each lane's low half, shifted up.
__attribute__((always_inline)) inline __m256 bfloat16_even(__m256i groups) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(groups, 16));
}

/// The mask of a lane's high half, which holds the odd weight.
__attribute__((always_inline)) inline __m256i bfloat16_high_halves() {
  return _mm256_set1_epi32(-65536);
}

/// The odd weights of 8 groups: each lane with its low half cleared.
__attribute__((always_inline)) inline __m256 bfloat16_odd(__m256i groups,
                                                          __m256i high = bfloat16_high_halves()) {
  return _mm256_castsi256_ps(_mm256_and_si256(groups, high));
}

__attribute__((always_inline)) inline Bfloat16Pair bfloat16_pair(__m256i groups) {
  return {bfloat16_even(groups), bfloat16_odd(groups)};
}

/// Group g of a bfloat16 operand row, which under avx2 holds the values as floats (2 a group:
/// broadcast loads, nothing to widen), in every lane.
__attribute__((always_inline)) inline Bfloat16Pair broadcast_pair(const std::uint8_t* row,
                                                                  Index g) {
  const float* values = reinterpret_cast<const float*>(row) + 2 * g;
  return {_mm256_broadcast_ss(values), _mm256_broadcast_ss(values + 1)};
}

/// sum + the products of a group of operand values a with the same group of weights w, the even
/// depth first. A product of two bfloat16 values is exact in float, so each multiply-add rounds
/// as an addition of that product would: the float kernel's chain over the depth in order on the
/// values the weights and operands stand for, bit for bit. In inline assembly, as the int8 dot
/// products, so that GCC keeps each sum in its register (from the intrinsics, in tiles of several
/// rows, it hoisted every row's operands ahead of the multiply-adds and spilled sums).
__attribute__((always_inline)) inline __m256 add_bfloat16_dot(__m256 sum, const Bfloat16Pair& a,
                                                              const Bfloat16Pair& w) {
  __asm__(
      "vfmadd231ps %[ae], %[we], %[sum]\n\t"
      "vfmadd231ps %[ao], %[wo], %[sum]"
      : [sum] "+x"(sum)
      : [ae] "x"(a.even), [ao] "x"(a.odd), [we] "x"(w.even), [wo] "x"(w.odd));
  return sum;
}

/// The sums of one operand row with one panel: its two halves of 8 rows.
struct PanelSums {
  __m256 half[2];
};

/// s + a[0] * (w0, w1), the operand broadcast once: one depth of a group (the even or the odd
/// one) for both halves of a panel. Tiles of several rows take every row's even products, then
/// every row's odd ones, so that only one widened half of the group's weights is in registers at
/// a time beside 12 sums (the sums taken and returned by value: GCC kept referenced ones in
/// memory).
__attribute__((always_inline)) inline PanelSums add_broadcast_products(PanelSums s, const float* a,
                                                                       __m256 w0, __m256 w1) {
  __m256 t;
  __asm__(
      "vbroadcastss %[a], %[t]\n\t"
      "vfmadd231ps %[t], %[w0], %[s0]\n\t"
      "vfmadd231ps %[t], %[w1], %[s1]"
      : [s0] "+x"(s.half[0]), [s1] "+x"(s.half[1]), [t] "=&x"(t)
      : [a] "m"(*a), [w0] "x"(w0), [w1] "x"(w1));
  return s;
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail

#else
namespace eigengru::EIGENGRU_KERNEL_SET::detail {
/// No int8 operand bytes without a dot-product kernel (the panels' offsets are then 0).
constexpr std::uint8_t kInt8OperandZero = 0;
}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
#endif
