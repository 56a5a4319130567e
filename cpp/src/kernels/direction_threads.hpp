// How a layer's two directions share the threads: the one decision that the stack's passes
// and StackStep (which repeats their row slices) must take alike.
#pragma once

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// Whether the two directions of a layer run side by side on split thread counts: when the
/// batch is too small to keep every thread busy on its own.
inline bool directions_side_by_side(Index directions, Index batch, int threads) {
  return directions == 2 && threads >= 2 && batch < threads;
}

/// The threads that direction d of a layer runs on: all of them, or, side by side, the
/// forward direction the larger half and the reverse one the rest.
inline int direction_threads(Index directions, Index batch, int threads, Index d) {
  if (!directions_side_by_side(directions, batch, threads)) return threads;
  return d == 0 ? threads - threads / 2 : threads / 2;
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
