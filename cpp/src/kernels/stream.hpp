// Step-by-step inference for real-time use: a stateful stack that advances one time step per
// call, allocating nothing after construction.
#pragma once

#include <vector>

#include "eigengru/stack_spec.hpp"
#include "eigengru/weights.hpp"
#include "forward_weights.hpp"
#include "kernel_set.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

/// A unidirectional stack of GRU layers run one time step at a time over `batch` independent
/// streams (1 for a single signal). The constructor copies and packs the weights and allocates
/// every buffer; step() and reset() then allocate nothing, take no locks and do not throw, so
/// they may run on a real-time thread. step() gives the numbers of stack_forward() over the same
/// sequence, bit for bit at one thread.
///
/// Thread safety: one Stream belongs to one thread at a time; distinct Streams are independent.
template <typename Scalar>
class Stream final : public eigengru::detail::StreamInterface<Scalar> {
 public:
  /// weights: spec.num_layers entries (PyTorch order). Throws std::invalid_argument for a
  /// bidirectional spec (a stream cannot see the future) or weights that do not match it.
  Stream(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index batch = 1);

  /// One step: x (batch, input_size) in, the top layer's new state (batch, hidden_size) out.
  /// x and out may not overlap the stream's own state.
  void step(const Scalar* x, Scalar* out) noexcept override;

  /// Sets every layer's state to zero.
  void reset() noexcept override;
  /// Sets the state from h0 (num_layers, batch, hidden_size).
  void reset(const Scalar* h0) noexcept override;

  /// The current state, (num_layers, batch, hidden_size).
  const Scalar* state() const noexcept override { return state_.data(); }
  const StackSpec& spec() const noexcept { return spec_; }
  Index batch() const noexcept { return batch_; }

 private:
  StackSpec spec_;
  Index batch_;
  std::vector<detail::ForwardWeights<Scalar>> layers_;
  Vector<Scalar> state_;                 // (L, B, H)
  RowMatrix<Scalar> gx_, gh_, records_;  // (B, 3H), (B, 3H), (B, 4H) or empty: scratch
  bool backwards_ = false;               // the order of this step's weight panels (reset
                                         // restarts it, so that a rerun is bitwise the same)
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET
