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
constexpr int kChains = 12;

enum class Instruction { kFloat, kBfloat16, kInt8 };

/// sum += a · a with the instruction, in inline assembly: the assembler, not the compiler,
/// needs to know it, and the sum stays in its register.
template <Instruction kInstruction>
__attribute__((always_inline)) inline __m512i multiply_add(__m512i sum, __m512i a) {
  if constexpr (kInstruction == Instruction::kFloat)
    __asm__("vfmadd231ps %1, %1, %0" : "+v"(sum) : "v"(a));
  else if constexpr (kInstruction == Instruction::kBfloat16)
    __asm__("vdpbf16ps %1, %1, %0" : "+v"(sum) : "v"(a));
  else
    __asm__("vpdpbusd %1, %1, %0" : "+v"(sum) : "v"(a));
  return sum;
}

/// kIterations steps of kChains independent chains; returns a value made of their sums.
template <Instruction kInstruction>
__attribute__((noinline)) int chains(__m512i a) {
  __m512i sums[kChains];
#pragma GCC unroll 12
  for (int i = 0; i < kChains; ++i) sums[i] = _mm512_setzero_si512();
  for (long n = 0; n < kIterations; ++n)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) sums[i] = multiply_add<kInstruction>(sums[i], a);
  __m512i all = sums[0];
#pragma GCC unroll 12
  for (int i = 1; i < kChains; ++i) all = _mm512_xor_si512(all, sums[i]);
  return _mm512_reduce_add_epi32(all);
}

/// Multiply-adds per ns of one instruction of `width` multiply-adds; a: small normal floats
/// (no denormals on the float path), or small integers.
template <Instruction kInstruction>
double rate(int width, __m512i a) {
  const auto start = std::chrono::steady_clock::now();
  volatile int sink = chains<kInstruction>(a);
  (void)sink;
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return double(kChains) * kIterations * width / ns;
}

}  // namespace

int main() {
  const double fma = rate<Instruction::kFloat>(16, _mm512_castps_si512(_mm512_set1_ps(1e-9f)));
  char bf16[32] = "null", int8[32] = "null";
  if (__builtin_cpu_supports("avx512bf16"))
    std::snprintf(bf16, sizeof bf16, "%.2f",
                  rate<Instruction::kBfloat16>(32, _mm512_set1_epi32(0x3f803f80)));  // 1.0, 1.0
  if (__builtin_cpu_supports("avx512vnni"))
    std::snprintf(int8, sizeof int8, "%.2f",
                  rate<Instruction::kInt8>(64, _mm512_set1_epi32(0x01010101)));
  std::printf("{\"float\": %.2f, \"bfloat16\": %s, \"int8\": %s}\n", fma, bf16, int8);
  return 0;
}
