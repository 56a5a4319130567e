// For the tests of internal kernels, compiled once per kernel set (CMakeLists.txt) with that
// set's sources and flags: the set's namespace. They run only where the CPU runs the set
// (ctest starts them through run_if_cpu_runs).
#pragma once

#include "check.hpp"
#include "target.hpp"

namespace kernels = eigengru::EIGENGRU_KERNEL_SET;
