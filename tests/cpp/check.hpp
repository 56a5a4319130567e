// The C++ tests' one assertion: report a failure and go on, so that a run lists every problem.
#pragma once

#include <cstdio>
#include <string>

namespace eigengru_test {

inline int failures = 0;

inline void check(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what.c_str());
    ++failures;
  }
}

/// The exit code, after a summary line.
inline int finish() {
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}

}  // namespace eigengru_test
