// How many calls took each of the core's alternative paths, for tests that target one: a test
// that means to exercise, say, the hidden-unit split can then check that the split ran rather
// than compare the ordinary path with itself (on a one-core machine, for one).
#pragma once

#include <cstdint>

namespace eigengru {

/// The paths counted: one count per layer-direction call that took it.
enum class Path : int {
  kForwardByUnits,          ///< inference split over hidden units (fewer rows than threads)
  kBackwardProductsInLoop,  ///< backward's dx and weight gradients made in its time loop
  kBackwardPartials,        ///< ... into per-thread partial weight gradients (several threads)
  kBackwardProductsAfter,   ///< ... in one pass after the loop (lengths, or shares out of cache)
  kDirectionsSideBySide,    ///< a layer's two directions run at once (fewer rows than threads)
  /// a quantized layer's single-row steps fused with their gates: per thread that runs one row
  /// through a layer-direction's sequence, and per layer of a batch-1 Stream when it is made
  kQuantizedRowStep,
  /// backward's dx and weight gradients made in its time loop by all the threads together, each
  /// a slice of every product (several threads, too few rows each for partial gradients)
  kBackwardSharedProducts,
  kStreamedRecords,  ///< a training forward's gate records written by non-temporal stores
  kCount
};

/// The number of calls that have taken `path` since the process started (relaxed atomics: a
/// count, not a synchronisation point).
std::uint64_t path_count(Path path);

namespace detail {
void count_path(Path path);
}  // namespace detail

}  // namespace eigengru
