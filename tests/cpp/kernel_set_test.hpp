// For the tests of internal kernels, compiled once per kernel set (CMakeLists.txt) with that
// set's sources and flags: the set's namespace. They run only where the CPU runs the set
// (ctest starts them through run_if_cpu_runs).
#pragma once

#include <string>

#include "check.hpp"
#include "eigengru/quantized.hpp"
#include "target.hpp"

namespace kernels = eigengru::EIGENGRU_KERNEL_SET;

namespace eigengru_test {

/// The product kernel that the compiled kernel set should run for `precision` on this CPU, by
/// the CPU's own flags: AVX-512's dot-product instructions where it has them, the avx2 set's
/// own products (int8 from vpmaddubsw, bfloat16 from float multiply-adds), else the portable
/// float products.
inline std::string expected_quantized_kernel(eigengru::Precision precision) {
  const bool int8 = precision == eigengru::Precision::kInt8;
#if defined(__AVX512F__)
  if (int8) return __builtin_cpu_supports("avx512vnni") ? "avx512-vnni" : "portable";
  return __builtin_cpu_supports("avx512bf16") ? "avx512-bf16" : "portable";
#elif defined(__AVX2__)
  return int8 ? "avx2-maddubs" : "avx2-fma";
#else
  (void)int8;
  return "portable";
#endif
}

}  // namespace eigengru_test
