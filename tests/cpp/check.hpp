// The C++ tests' one assertion: report a failure and go on, so that a run lists every problem.
#pragma once

#include <cstdio>
#include <random>
#include <string>
#include <vector>

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

/// The exit code, after a summary line.
inline int finish() {
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

}  // namespace eigengru_test
