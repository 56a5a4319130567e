// How threads that split a recurrence by hidden units wait for each other: each part counts the
// phases it has completed on a cache line of its own, and a part that needs another's results
// spins until that count is reached. Unlike a barrier (a shared counter every thread writes,
// then a release flag: several transfers of a cache line between the cores in a row), a wait
// costs one transfer, and a part can start on the inputs that are its own before it waits for
// the rest.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#endif

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

class PhaseCounters {
 public:
  explicit PhaseCounters(int parts) : counters_(static_cast<std::size_t>(parts)) {}

  /// Part `part` has completed `phase` phases: what it wrote before is visible to every part
  /// that waits for that count.
  void publish(int part, Index phase) noexcept {
    counters_[static_cast<std::size_t>(part)].value.store(phase, std::memory_order_release);
  }

  /// Returns once part `part` has completed at least `phase` phases.
  void wait(int part, Index phase) const noexcept {
    const std::atomic<Index>& counter = counters_[static_cast<std::size_t>(part)].value;
    for (long spins = 0; counter.load(std::memory_order_acquire) < phase; ++spins) {
      if (spins < kSpins) {
#if defined(__SSE2__) || defined(_M_X64)
        _mm_pause();
#endif
      } else {
        std::this_thread::yield();  // another thread holds our core: let it run
      }
    }
  }

 private:
  static constexpr long kSpins = 1L << 10;
  struct alignas(64) Counter {
    std::atomic<Index> value{0};
  };
  std::vector<Counter> counters_;
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
