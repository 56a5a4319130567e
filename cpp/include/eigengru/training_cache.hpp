// What a training forward pass keeps for backward.
#pragma once

#include <cstddef>
#include <memory>

#include "eigengru/types.hpp"

namespace eigengru {

namespace detail {
template <typename Scalar>
class TrainingCacheInterface;
struct Handles;
}  // namespace detail

/// Filled by forward_training(), consumed by backward(): the gate activations of every step and
/// row (r, z, n and the factor of W_hn, 4H values), the state each step started from, and copies of
/// the input and of the weights, so that backward differentiates exactly the forward that ran
/// even if the caller reuses its buffers in between. backward() overwrites the gate activations
/// with gate gradients, so one forward allows one backward. A consumed cache keeps its memory
/// for the next forward_training() to reuse (fresh memory costs page faults on every call);
/// clear() releases it.
///
/// The memory belongs to the kernel set in use (see isa.hpp); the class itself is a handle, movable
/// and not copyable. Thread safety: one cache belongs to one forward/backward pair at a time;
/// distinct caches may be used from different threads at once.
template <typename Scalar>
class TrainingCache {
 public:
  TrainingCache();
  ~TrainingCache();
  TrainingCache(TrainingCache&&) noexcept;
  TrainingCache& operator=(TrainingCache&&) noexcept;

  /// True between a forward_training() and the backward() that consumes it.
  bool ready() const;
  Index steps() const;
  Index batch() const;
  Index input_size() const;
  Index hidden_size() const;
  bool reset_after() const;
  bool has_bias() const;
  bool reverse() const;
  /// Bytes of memory held.
  std::size_t bytes() const;
  /// Releases the memory; ready() becomes false.
  void clear();

 private:
  friend struct detail::Handles;
  std::unique_ptr<detail::TrainingCacheInterface<Scalar>> state_;
};

}  // namespace eigengru
