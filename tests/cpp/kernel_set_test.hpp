// For the tests of internal kernels, compiled once per kernel set (CMakeLists.txt) with that
// set's sources and flags: the set's namespace, and whether this CPU runs the set.
#pragma once

#include "check.hpp"
#include "target.hpp"

#define EIGENGRU_STRING_(a) #a
#define EIGENGRU_STRING(a) EIGENGRU_STRING_(a)

namespace kernels = eigengru::EIGENGRU_KERNEL_SET;

namespace eigengru_test {

/// Whether this CPU runs the kernel set this test is compiled for (else it is skipped).
inline bool compiled_kernel_set_runs() { return cpu_runs(EIGENGRU_STRING(EIGENGRU_KERNEL_SET)); }

}  // namespace eigengru_test
