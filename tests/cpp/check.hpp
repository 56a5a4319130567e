// The C++ tests' one assertion: report a failure and go on, so that a run lists every problem.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "eigengru/isa.hpp"

namespace eigengru_test {

inline int failures = 0;

inline void check(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what.c_str());
    ++failures;
  }
}

/// v resized to n values drawn uniformly from (-bound, bound).
template <typename Generator>
void fill_uniform(std::vector<double>& v, long n, Generator& gen, double bound) {
  std::uniform_real_distribution<double> u(-bound, bound);
  v.resize(static_cast<std::size_t>(n));
  for (double& value : v) value = u(gen);
}

/// ctest's "skipped" exit code (SKIP_RETURN_CODE in CMakeLists.txt).
constexpr int kSkipped = 77;

/// Whether this CPU runs the kernel set `set`: a test of a set it lacks is skipped, not failed.
inline bool cpu_runs(const std::string& set) {
  const std::vector<std::string> sets = eigengru::supported_isas();
  return std::find(sets.begin(), sets.end(), set) != sets.end();
}

/// For a test run under EIGENGRU_ISA (CMakeLists.txt runs each once per kernel set): false
/// when this CPU lacks that set, and the test is to be skipped; else true, having checked that
/// the set in use is the one asked for.
inline bool requested_kernel_set_runs() {
  const char* env = std::getenv("EIGENGRU_ISA");
  const std::string set = env != nullptr ? env : "";
  if (set.empty() || set == "auto") return true;
  if (!cpu_runs(set)) return false;
  check(eigengru::isa() == set, "EIGENGRU_ISA=" + set + " runs " + eigengru::isa());
  return true;
}

/// The exit code, after a summary line.
inline int finish() {
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

}  // namespace eigengru_test
