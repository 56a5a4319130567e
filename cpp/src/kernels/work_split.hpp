// How a call's work is split among threads: the thread count, read once per call and passed
// down (another thread may change it meanwhile), and the slices that each thread owns.
#pragma once

#include <omp.h>

#include <algorithm>
#include <exception>
#include <thread>

#include "eigengru/path_counts.hpp"
#include "eigengru/sequence.hpp"
#include "eigengru/threads.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// A half-open range [begin, end) of rows, units or row blocks.
struct Slice {
  Index begin, end;
  Index size() const { return end - begin; }
};

/// Part `part` of `parts` near-equal slices of [0, count), each starting on a multiple of
/// `block` (the last one ends at count).
inline Slice share(Index count, Index part, Index parts, Index block = 1) {
  const Index blocks = (count + block - 1) / block;
  return {std::min(count, blocks * part / parts * block),
          std::min(count, blocks * (part + 1) / parts * block)};
}

/// The calling OpenMP thread's share of [0, count) among its team.
inline Slice my_share(Index count, Index block = 1) {
  return share(count, omp_get_thread_num(), omp_get_num_threads(), block);
}

/// The threads a call may use: the count it was given (a Sequence's threads), or else the
/// library's, read once.
inline int call_threads(int requested) { return requested > 0 ? requested : get_num_threads(); }

/// Threads for work split by rows: one row each at most.
inline int row_threads(int threads, Index rows) {
  return static_cast<int>(std::clamp<Index>(rows, 1, threads));
}

/// Units a thread takes at least when a forward is split by hidden units: the threads exchange
/// their states at every step, and on some hosts a core's share of a step of fewer units takes
/// less time than that exchange, which made two threads slower than one.
constexpr Index kMinUnitsPerThread = 64;

/// Threads for an inference forward split by hidden units rather than rows: when the batch has
/// fewer rows than there are threads, kMinUnitsPerThread units a thread at least, and no more
/// threads than processors, since they wait for each other every step (else 1: split by rows).
/// A function of the shape, the thread setting and the processor count alone, so that results
/// are repeatable.
inline int unit_threads(int threads, const Sequence& seq, Index hidden_size) {
  const Index wanted = std::min<Index>(threads, omp_get_num_procs());
  if (seq.batch >= wanted || seq.steps == 0 || seq.batch == 0) return 1;
  return static_cast<int>(std::clamp<Index>(hidden_size / kMinUnitsPerThread, 1, wanted));
}

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

/// Runs job(d, direction_threads(...)) for the directions d of a layer: side by side when
/// directions_side_by_side, otherwise one after the other with all threads. The caller reads
/// the thread count once and passes it to every decision of a call, since another thread may
/// change it meanwhile.
template <typename Job>
void for_each_direction(Index directions, Index batch, int threads, Job job) {
  if (!directions_side_by_side(directions, batch, threads)) {
    for (Index d = 0; d < directions; ++d) job(d, threads);
    return;
  }
  eigengru::detail::count_path(Path::kDirectionsSideBySide);
  std::exception_ptr failure;
  std::thread reverse([&] {
    try {
      job(1, direction_threads(directions, batch, threads, 1));
    } catch (...) {
      failure = std::current_exception();
    }
  });
  try {
    job(0, direction_threads(directions, batch, threads, 0));
  } catch (...) {
    reverse.join();
    throw;
  }
  reverse.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
