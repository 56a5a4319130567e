// Choosing the kernel set: once, at first use, from what the CPU and its operating system
// support (CPUID and XGETBV) or from EIGENGRU_ISA, never from the consumer's compile flags.
#include "eigengru/isa.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_set.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

// Each compiled set's table (cpp/src/kernels/entry.cpp); CMake says which sets exist.
extern "C" {
#ifdef EIGENGRU_HAS_AVX512
const eigengru::detail::KernelSet* eigengru_kernel_set_avx512();
#endif
#ifdef EIGENGRU_HAS_AVX2
const eigengru::detail::KernelSet* eigengru_kernel_set_avx2();
#endif
#ifdef EIGENGRU_HAS_BASELINE
const eigengru::detail::KernelSet* eigengru_kernel_set_baseline();
#endif
#ifdef EIGENGRU_HAS_NATIVE
const eigengru::detail::KernelSet* eigengru_kernel_set_native();
#endif
}

namespace eigengru {
namespace {

/// What the CPU and the OS's saved register state allow.
struct CpuFeatures {
  bool avx2 = false;    ///< x86-64-v3: AVX, AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE; YMM state on
  bool avx512 = false;  ///< x86-64-v4: v3 and AVX-512 F, BW, CD, DQ, VL; ZMM state on
};

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const unsigned leaf1_ecx = c;
  const bool osxsave = (c >> 27) & 1;
  if (!osxsave) return f;  // the OS does not save the vector registers: no AVX at all
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_state = (xcr0_lo & 0x6) == 0x6;    // SSE and AVX state
  const bool zmm_state = (xcr0_lo & 0xe6) == 0xe6;  // and opmask, ZMM0-15 high, ZMM16-31
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned leaf7_ebx = b;
  unsigned ext_ecx = 0;
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) ext_ecx = c;
  auto bit = [](unsigned reg, int n) { return ((reg >> n) & 1) != 0; };
  f.avx2 = ymm_state && bit(leaf1_ecx, 12) /* FMA */ && bit(leaf1_ecx, 22) /* MOVBE */ &&
           bit(leaf1_ecx, 28) /* AVX */ && bit(leaf1_ecx, 29) /* F16C */ &&
           bit(leaf7_ebx, 3) /* BMI1 */ && bit(leaf7_ebx, 5) /* AVX2 */ &&
           bit(leaf7_ebx, 8) /* BMI2 */ && bit(ext_ecx, 5) /* LZCNT */;
  f.avx512 = f.avx2 && zmm_state && bit(leaf7_ebx, 16) /* F */ && bit(leaf7_ebx, 17) /* DQ */ &&
             bit(leaf7_ebx, 28) /* CD */ && bit(leaf7_ebx, 30) /* BW */ &&
             bit(leaf7_ebx, 31) /* VL */;
#endif
  return f;
}

struct Candidate {
  const char* name;
  const detail::KernelSet* (*table)();
  bool supported;
  const char* requirement;  ///< what the CPU lacks when it is not supported
};

/// The compiled sets, fastest first.
std::vector<Candidate> candidates() {
  const CpuFeatures cpu = detect();
  std::vector<Candidate> sets;
#ifdef EIGENGRU_HAS_NATIVE
  sets.push_back({"native", eigengru_kernel_set_native, true, ""});
#endif
#ifdef EIGENGRU_HAS_AVX512
  sets.push_back({"avx512", eigengru_kernel_set_avx512, cpu.avx512,
                  "AVX-512 F, BW, CD, DQ and VL with AVX2 and FMA, enabled by the OS"});
#endif
#ifdef EIGENGRU_HAS_AVX2
  sets.push_back({"avx2", eigengru_kernel_set_avx2, cpu.avx2,
                  "AVX2, FMA, F16C, BMI1, BMI2, LZCNT and MOVBE, enabled by the OS"});
#endif
#ifdef EIGENGRU_HAS_BASELINE
  sets.push_back({"baseline", eigengru_kernel_set_baseline, true, ""});
#endif
  static_cast<void>(cpu);
  return sets;
}

std::string names(const std::vector<Candidate>& sets) {
  std::string out;
  for (const Candidate& set : sets) out += (out.empty() ? "" : ", ") + std::string(set.name);
  return out;
}

const detail::KernelSet& choose() {
  const std::vector<Candidate> sets = candidates();
  const char* env = std::getenv("EIGENGRU_ISA");
  const std::string wanted = env != nullptr ? env : "";
  if (wanted.empty() || wanted == "auto") {
    for (const Candidate& set : sets)
      if (set.supported) return *set.table();
    throw std::runtime_error(
        "eigengru: no compiled kernel set runs on this CPU (compiled: " + names(sets) + ")");
  }
  for (const Candidate& set : sets) {
    if (wanted != set.name) continue;
    if (!set.supported) {
      std::vector<Candidate> runnable;
      for (const Candidate& other : sets)
        if (other.supported) runnable.push_back(other);
      throw std::runtime_error("EIGENGRU_ISA=" + wanted + ": this CPU does not support it (" +
                               set.requirement + " are needed); unset EIGENGRU_ISA or choose " +
                               "a set that it runs: " + names(runnable));
    }
    return *set.table();
  }
  throw std::runtime_error("EIGENGRU_ISA=" + wanted +
                           ": expected auto or a kernel set compiled into this build (" +
                           names(sets) + ")");
}

}  // namespace

namespace detail {
const KernelSet& active_kernel_set() {
  static const KernelSet& chosen = choose();  // a throw leaves it unset: the next call retries
  return chosen;
}
}  // namespace detail

std::string isa() { return detail::active_kernel_set().name; }

std::string isa_instructions() { return detail::active_kernel_set().simd(); }

std::vector<std::string> compiled_isas() {
  std::vector<std::string> out;
  for (const Candidate& set : candidates()) out.push_back(set.name);
  return out;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const Candidate& set : candidates())
    if (set.supported) out.push_back(set.name);
  return out;
}

}  // namespace eigengru
