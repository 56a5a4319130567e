// The single-core peak rate of the multiply-add instructions the kernels are built on, on
// registers only (twelve independent chains, no memory traffic). Built per kernel set:
//   avx512: vfmadd (16 float multiply-adds), vdpbf16ps (32 bfloat16 products summed into
//           float) and vpdpbusd (64 int8 products summed into int32);
//   avx2:   vfmadd (8 float multiply-adds) and the int8 kernels' own sequence of vpsignb,
//           vpmaddubsw, vpmaddwd and vpaddd (32 int8 products summed into int32); no bfloat16.
// A product can be no faster than its multiply-adds at these rates.
//
//   dot_product_peak_<set>   prints one JSON object: multiply-adds per ns of each, or null
//                            where this CPU or this set lacks the instructions
#include <immintrin.h>

#include <chrono>
#include <cstdio>

#include "quantized_dot.hpp"

namespace {

constexpr long kIterations = 50000000;
constexpr int kChains = 12;

enum class Instruction { kFloat, kBfloat16, kInt8 };

#if defined(__AVX512F__)
using Register = __m512i;

/// sum += a · a with the instruction, in inline assembly: the assembler, not the compiler,
/// needs to know it, and the sum stays in its register.
template <Instruction kInstruction>
__attribute__((always_inline)) inline Register multiply_add(Register sum, Register a) {
  if constexpr (kInstruction == Instruction::kFloat)
    __asm__("vfmadd231ps %1, %1, %0" : "+v"(sum) : "v"(a));
  else if constexpr (kInstruction == Instruction::kBfloat16)
    __asm__("vdpbf16ps %1, %1, %0" : "+v"(sum) : "v"(a));
  else
    __asm__("vpdpbusd %1, %1, %0" : "+v"(sum) : "v"(a));
  return sum;
}

Register zero() { return _mm512_setzero_si512(); }
int reduce(Register v) { return _mm512_reduce_add_epi32(v); }
Register combine(Register a, Register b) { return _mm512_xor_si512(a, b); }
Register float_operand() { return _mm512_castps_si512(_mm512_set1_ps(1e-9f)); }
Register bfloat16_operand() { return _mm512_set1_epi32(0x3f803f80); }  // 1.0, 1.0
Register int8_operand() { return _mm512_set1_epi32(0x01010101); }
constexpr int kFloatWidth = 16, kBfloat16Width = 32, kInt8Width = 64;
bool has_bfloat16() { return __builtin_cpu_supports("avx512bf16"); }
bool has_int8() { return __builtin_cpu_supports("avx512vnni"); }
#else
using Register = __m256i;

template <Instruction kInstruction>
__attribute__((always_inline)) inline Register multiply_add(Register sum, Register a) {
  if constexpr (kInstruction == Instruction::kFloat) {
    __asm__("vfmadd231ps %1, %1, %0" : "+x"(sum) : "x"(a));
    return sum;
  } else {  // the int8 kernels' sequence; `a` is its own magnitude
    return eigengru::EIGENGRU_KERNEL_SET::detail::add_int8_dot(sum, a, a, a, _mm256_set1_epi16(1));
  }
}

Register zero() { return _mm256_setzero_si256(); }
int reduce(Register v) { return _mm256_extract_epi32(v, 0) + _mm256_extract_epi32(v, 7); }
Register combine(Register a, Register b) { return _mm256_xor_si256(a, b); }
Register float_operand() { return _mm256_castps_si256(_mm256_set1_ps(1e-9f)); }
Register bfloat16_operand() { return zero(); }
Register int8_operand() { return _mm256_set1_epi32(0x01010101); }
constexpr int kFloatWidth = 8, kBfloat16Width = 0, kInt8Width = 32;
bool has_bfloat16() { return false; }
bool has_int8() { return true; }
#endif

/// kIterations steps of kChains independent chains; returns a value made of their sums.
template <Instruction kInstruction>
__attribute__((noinline)) int chains(Register a) {
  Register sums[kChains];
#pragma GCC unroll 12
  for (int i = 0; i < kChains; ++i) sums[i] = zero();
  for (long n = 0; n < kIterations; ++n)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) sums[i] = multiply_add<kInstruction>(sums[i], a);
  Register all = sums[0];
#pragma GCC unroll 12
  for (int i = 1; i < kChains; ++i) all = combine(all, sums[i]);
  return reduce(all);
}

/// Multiply-adds per ns of one instruction (or sequence) of `width` multiply-adds; a: small
/// normal floats (no denormals on the float path), or small integers.
template <Instruction kInstruction>
double rate(int width, Register a) {
  const auto start = std::chrono::steady_clock::now();
  volatile int sink = chains<kInstruction>(a);
  (void)sink;
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return double(kChains) * kIterations * width / ns;
}

}  // namespace

int main() {
  const double fma = rate<Instruction::kFloat>(kFloatWidth, float_operand());
  char bf16[32] = "null", int8[32] = "null";
  if (has_bfloat16())
    std::snprintf(bf16, sizeof bf16, "%.2f",
                  rate<Instruction::kBfloat16>(kBfloat16Width, bfloat16_operand()));
  if (has_int8())
    std::snprintf(int8, sizeof int8, "%.2f", rate<Instruction::kInt8>(kInt8Width, int8_operand()));
  std::printf("{\"float\": %.2f, \"bfloat16\": %s, \"int8\": %s}\n", fma, bf16, int8);
  return 0;
}
