// The instruction sets that eigengru's kernels are compiled for, and the one in use.
//
// The numerical core is compiled once per kernel set: "avx512" (AVX-512 F, BW, CD, DQ, VL with
// FMA: x86-64-v4), "avx2" (AVX2 with FMA: x86-64-v3) and "baseline" (whatever the compiler's
// default target has: SSE2 on x86-64); a build with EIGENGRU_NATIVE has the one set "native".
// The first call that computes anything chooses the set: the one the environment variable
// EIGENGRU_ISA names (avx512, avx2, baseline, or auto), else the fastest that this CPU and its
// operating system support (CPUID and XGETBV).
#pragma once

#include <string>
#include <vector>

namespace eigengru {

/// The kernel set in use, choosing it if nothing has yet. Throws std::runtime_error when
/// EIGENGRU_ISA is not a known set, not compiled in, or not supported by this CPU.
std::string isa();

/// The SIMD instruction sets that the kernel set in use is compiled for (for example
/// "AVX512F, AVX512BW, AVX512CD, AVX512DQ, AVX512VL, AVX2, FMA, AVX, SSE4.2, ..."); chooses the
/// set as isa() does.
std::string isa_instructions();

/// The kernel sets compiled in, fastest first.
std::vector<std::string> compiled_isas();

/// The compiled kernel sets that this CPU supports, fastest first.
std::vector<std::string> supported_isas();

}  // namespace eigengru
