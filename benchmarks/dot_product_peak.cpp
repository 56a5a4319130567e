// The single-core peak rate of the three multiply-add instructions the kernels are built on,
// 512 bits wide, on registers only (twelve independent chains, no memory traffic): vfmadd (16
// float multiply-adds), vdpbf16ps (32 bfloat16 products summed into float) and vpdpbusd (64
// int8 products summed into int32). A product can be no faster than its multiply-adds at
// these rates.
//
//   dot_product_peak     prints one JSON object: multiply-adds per ns of each, or null where
//                        this CPU lacks the instruction
#include <immintrin.h>

#include <chrono>
#include <cstdio>

namespace {

constexpr long kIterations = 50000000;

#define EIGENGRU_TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((noinline)) float fma_chains(float seed) {
#define EIGENGRU_DECLARE(i) __m512 a##i = _mm512_set1_ps(seed * i);
  EIGENGRU_TWELVE(EIGENGRU_DECLARE)
  const __m512 b = _mm512_set1_ps(seed);
  for (long n = 0; n < kIterations; ++n) {
#define EIGENGRU_STEP(i) a##i = _mm512_fmadd_ps(a##i, b, b);
    EIGENGRU_TWELVE(EIGENGRU_STEP)
#undef EIGENGRU_STEP
  }
#define EIGENGRU_SUM(i) +_mm512_reduce_add_ps(a##i)
  return 0 EIGENGRU_TWELVE(EIGENGRU_SUM);
}

__attribute__((noinline, target("avx512bf16"))) float bfloat16_chains(float seed) {
  EIGENGRU_TWELVE(EIGENGRU_DECLARE)
  const __m512bh b = (__m512bh)_mm512_set1_epi32(static_cast<int>(seed));
  for (long n = 0; n < kIterations; ++n) {
#define EIGENGRU_STEP(i) a##i = _mm512_dpbf16_ps(a##i, b, b);
    EIGENGRU_TWELVE(EIGENGRU_STEP)
#undef EIGENGRU_STEP
  }
  return 0 EIGENGRU_TWELVE(EIGENGRU_SUM);
#undef EIGENGRU_DECLARE
#undef EIGENGRU_SUM
}

__attribute__((noinline, target("avx512vnni"))) int int8_chains(int seed) {
#define EIGENGRU_DECLARE(i) __m512i a##i = _mm512_set1_epi32(seed * i);
  EIGENGRU_TWELVE(EIGENGRU_DECLARE)
  const __m512i b = _mm512_set1_epi32(seed);
  for (long n = 0; n < kIterations; ++n) {
#define EIGENGRU_STEP(i) a##i = _mm512_dpbusd_epi32(a##i, b, b);
    EIGENGRU_TWELVE(EIGENGRU_STEP)
#undef EIGENGRU_STEP
  }
#define EIGENGRU_SUM(i) +_mm512_reduce_add_epi32(a##i)
  return 0 EIGENGRU_TWELVE(EIGENGRU_SUM);
}

/// Multiply-adds per ns of `chains` (each iteration: 12 instructions of `width` each).
template <typename Chains>
double rate(Chains chains, int width) {
  const auto start = std::chrono::steady_clock::now();
  volatile auto sink = chains();
  (void)sink;
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return 12.0 * kIterations * width / ns;
}

}  // namespace

int main() {
  const double fma = rate([] { return fma_chains(1e-9f); }, 16);
  char bf16[32] = "null", int8[32] = "null";
  if (__builtin_cpu_supports("avx512bf16"))
    std::snprintf(bf16, sizeof bf16, "%.2f", rate([] { return bfloat16_chains(1.0f); }, 32));
  if (__builtin_cpu_supports("avx512vnni"))
    std::snprintf(int8, sizeof int8, "%.2f", rate([] { return int8_chains(1); }, 64));
  std::printf("{\"float\": %.2f, \"bfloat16\": %s, \"int8\": %s}\n", fma, bf16, int8);
  return 0;
}
