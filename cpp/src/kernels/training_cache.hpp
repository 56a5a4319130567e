// What a training forward pass keeps for backward: the kernel set's state behind
// eigengru::TrainingCache.
#pragma once

#include <cstddef>
#include <vector>

#include "backward_weights.hpp"
#include "eigengru/weights.hpp"
#include "kernel_set.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

namespace detail {
template <typename Scalar>
struct LayerPasses;
}

/// Filled by forward_training(), consumed by backward(): the gate activations of every step and
/// row (r, z, n and the factor of W_hn, 4H values), the state each step started from, and copies of
/// the input and of the weights (packed for backward's products), so that backward
/// differentiates exactly the forward that ran
/// even if the caller reuses its buffers in between. backward() overwrites the gate activations
/// with gate gradients, so one forward allows one backward. A consumed cache keeps its memory
/// for the next forward_training() to reuse (fresh memory costs page faults on every call);
/// clear() releases it.
///
/// Thread safety: one cache belongs to one forward/backward pair at a time; distinct caches may
/// be used from different threads at once.
template <typename Scalar>
class TrainingCache final : public eigengru::detail::TrainingCacheInterface<Scalar> {
 public:
  /// True between a forward_training() and the backward() that consumes it.
  bool ready() const override { return ready_; }
  Index steps() const override { return steps_; }
  Index batch() const override { return batch_; }
  Index input_size() const override { return input_size_; }
  Index hidden_size() const override { return hidden_size_; }
  bool reset_after() const override { return reset_after_; }
  bool has_bias() const override { return has_bias_; }
  bool reverse() const override { return reverse_; }
  const Nonlinearities& nonlinearities() const { return nonlinearities_; }
  /// The state's per-sequence dropout mask (B, H) of the last training forward, or nullptr.
  const Scalar* recurrent_mask() const {
    return recurrent_mask_.size() > 0 ? recurrent_mask_.data() : nullptr;
  }
  /// Bytes of memory held.
  std::size_t bytes() const override {
    return sizeof(Scalar) *
               static_cast<std::size_t>(inputs_.size() + weights_.size() + prev_states_.size() +
                                        gates_.size() + kept_copy_.size() + recurrent_mask_.size() +
                                        masked_states_.size()) +
           sizeof(Index) * lengths_.size();
  }
  /// Releases the memory; ready() becomes false.
  void clear() override { *this = TrainingCache(); }

 private:
  friend struct detail::LayerPasses<Scalar>;

  bool ready_ = false;
  Index steps_ = 0, batch_ = 0, input_size_ = 0, hidden_size_ = 0;
  Index out_stride_ = 0;
  int threads_ = 0;
  bool reset_after_ = true, has_bias_ = true, reverse_ = false;
  Nonlinearities nonlinearities_;
  std::vector<Index> lengths_;  // B entries
  RowMatrix<Scalar> inputs_;    // (T*B, I)
  detail::BackwardWeights<Scalar> weights_;
  // Indexed by time t and row b as row t*B + b, zero at padded steps:
  RowMatrix<Scalar> prev_states_;  // (T*B, H): the state the step at (t, b) started from
  RowMatrix<Scalar> gates_;        // (T*B, 4H): the gate records of cell.hpp
  RowMatrix<Scalar> kept_copy_;    // backward's work copy of gates_ when the cache is kept
  // With recurrent dropout only (else empty): the mask, and prev_states_ times it, what W_hh
  // multiplied.
  RowMatrix<Scalar> recurrent_mask_;  // (B, H)
  RowMatrix<Scalar> masked_states_;   // (T*B, H)
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET
