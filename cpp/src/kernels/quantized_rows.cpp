#include "quantized_rows.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "bfloat16.hpp"
#include "quantized_dot.hpp"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

namespace {

/// The scale of an int8 operand row of largest magnitude `largest`, for rows that are not
/// all zeros: NaN when the row holds a NaN or an infinity, which then carries into its sums.
float int8_scale(float largest, bool not_a_number) {
  if (not_a_number || !std::isfinite(largest)) return std::numeric_limits<float>::quiet_NaN();
  return largest / 127.0f;
}

}  // namespace

#if defined(__AVX512F__)
namespace {
__attribute__((always_inline)) inline __mmask16 tail_mask(Index k, Index K) {
  return k + 16 <= K ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (K - k)) - 1);
}
}  // namespace

float int8_row(const float* x, Index K, Index padded, std::uint8_t* dst) {
  std::fill(dst + K, dst + padded, kInt8OperandZero);
  __m512 high = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (Index k = 0; k < K; k += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(k, K), x + k));
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    high = _mm512_max_ps(high, v);
  }
  const float largest = _mm512_reduce_max_ps(high);
  if (largest == 0.0f && nan == 0) {
    std::fill(dst, dst + K, kInt8OperandZero);
    return 0.0f;
  }
  const float scale = int8_scale(largest, nan != 0);
  const __m512 inverse = _mm512_set1_ps(std::isnan(scale) ? 0.0f : 127.0f / largest);
  const __m512i zero = _mm512_set1_epi32(kInt8OperandZero);
  for (Index k = 0; k < K; k += 16) {  // rounds to nearest, ties to even, as nearbyint does
    const __mmask16 mask = tail_mask(k, K);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + k), inverse);
    // a NaN times 0 stays NaN, which converts to INT_MIN: its byte is ignored (NaN scale)
    _mm512_mask_cvtepi32_storeu_epi8(dst + k, mask, _mm512_add_epi32(_mm512_cvtps_epi32(v), zero));
  }
  return scale;
}

// to_bfloat16, 16 at a time.
void bfloat16_row(const float* x, Index K, Index padded, std::uint8_t* bytes) {
  auto* dst = reinterpret_cast<std::uint16_t*>(bytes);
  std::fill(dst + K, dst + padded, std::uint16_t{0});
  const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
  for (Index k = 0; k < K; k += 16) {
    const __mmask16 mask = tail_mask(k, K);
    const __m512 v = _mm512_maskz_loadu_ps(mask, x + k);
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i b = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(half, odd)), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    b = _mm512_mask_mov_epi32(b, nan,
                              _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    _mm512_mask_cvtepi32_storeu_epi16(dst + k, mask, b);
  }
}

#elif defined(__AVX2__)
float int8_row(const float* x, Index K, Index padded, std::uint8_t* dst) {
  std::fill(dst + K, dst + padded, kInt8OperandZero);
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 high = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
  Index k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + k), magnitude);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    high = _mm256_max_ps(high, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, high);
  float largest = *std::max_element(lanes, lanes + 8);
  bool not_a_number = _mm256_movemask_ps(nan) != 0;
  for (; k < K; ++k) {
    not_a_number = not_a_number || std::isnan(x[k]);
    largest = std::max(largest, std::fabs(x[k]));
  }
  const float scale = largest == 0.0f && !not_a_number ? 0.0f : int8_scale(largest, not_a_number);
  if (scale == 0.0f || std::isnan(scale)) {  // a NaN scale makes every sum NaN, whatever q is
    std::fill(dst, dst + K, std::uint8_t{0});
    return scale;
  }
  // 32 values at a time, rounded to nearest, ties to even, as nearbyint does; packed to bytes
  // (the packs interleave 128-bit lanes, which the permutation undoes)
  const float inverse = 127.0f / largest;
  const __m256 scaled = _mm256_set1_ps(inverse);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (k = 0; k + 32 <= K; k += 32) {
    __m256i q[4];
    for (int i = 0; i < 4; ++i)
      q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * i), scaled));
    const __m256i bytes =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k),
                        _mm256_permutevar8x32_epi32(bytes, order));
  }
  for (; k < K; ++k)
    dst[k] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::nearbyint(x[k] * inverse)));
  return scale;
}

// from_bfloat16(to_bfloat16(x)), 8 at a time.
void bfloat16_value_row(const float* x, Index K, Index padded, float* dst) {
  std::fill(dst + K, dst + padded, 0.0f);
  const __m256i half = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1),
                quiet = _mm256_set1_epi32(0x00400000), upper = bfloat16_high_halves();
  Index k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 v = _mm256_loadu_ps(x + k);
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    const __m256i rounded =
        _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(half, odd)), upper);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i quieted = _mm256_or_si256(_mm256_and_si256(u, upper), quiet);
    _mm256_storeu_ps(dst + k, _mm256_castsi256_ps(_mm256_blendv_epi8(rounded, quieted, nan)));
  }
  for (; k < K; ++k) dst[k] = eigengru::detail::from_bfloat16(eigengru::detail::to_bfloat16(x[k]));
}
#endif

void value_row(Precision precision, const float* x, Index K, float* dst) {
  if (precision == Precision::kBfloat16) {
    for (Index k = 0; k < K; ++k)
      dst[k] = eigengru::detail::from_bfloat16(eigengru::detail::to_bfloat16(x[k]));
    return;
  }
  float largest = 0.0f;
  bool nan = false;
  for (Index k = 0; k < K; ++k) {
    nan = nan || std::isnan(x[k]);
    largest = std::max(largest, std::fabs(x[k]));
  }
  const float scale = largest == 0.0f && !nan ? 0.0f : int8_scale(largest, nan);
  if (scale == 0.0f || std::isnan(scale)) {
    std::fill(dst, dst + K, scale);
    return;
  }
  const float inverse = 127.0f / largest;
  for (Index k = 0; k < K; ++k) dst[k] = std::nearbyint(x[k] * inverse) * scale;
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
