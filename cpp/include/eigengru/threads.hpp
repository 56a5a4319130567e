// The number of threads eigengru's kernels use.
#pragma once

namespace eigengru {

/// Sets the thread count for all later calls, from any thread.
/// Throws std::invalid_argument when n < 1.
void set_num_threads(int n);

/// The thread count in force: the last set_num_threads(), else OpenMP's default (OMP_NUM_THREADS
/// or the number of cores).
int get_num_threads();

}  // namespace eigengru
