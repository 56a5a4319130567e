// One time step of a whole stack with the state passed in and out: the one-step calls of
// sampling and control loops, where the caller keeps the state between calls.
#pragma once

#include <vector>

#include "eigengru/stack_spec.hpp"
#include "eigengru/weights.hpp"
#include "forward_weights.hpp"
#include "kernel_set.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

/// A stack's layer-directions packed once for single inference steps over a few rows. Unlike
/// Stream it keeps no state and takes bidirectional stacks (over one step, the reverse
/// direction is one step from its own initial state).
///
/// forward() gives the numbers of stack_forward_training() over the same one step, bit for bit
/// at any thread count: the rows go through in the slices that the sequence forward's threads
/// would take. It allocates only when a batch is larger than every batch before it. One
/// StackStep belongs to one thread at a time.
template <typename Scalar>
class StackStep final : public eigengru::detail::StackStepInterface<Scalar> {
 public:
  /// weights: spec.num_layers * spec.directions() entries (PyTorch order). Copies and packs
  /// them; throws std::invalid_argument for weights that do not match the spec.
  StackStep(const StackSpec& spec, const LayerWeights<Scalar>* weights);

  /// x (batch, input_size) and h0 (layers * directions, batch, hidden_size), or nullptr for
  /// zeros, to h_n (same shape as h0) and out (batch, directions * hidden_size), the top layer's
  /// output. threads: the thread count whose row slices to follow (min(batch, threads) even
  /// slices, as the sequence forward splits its rows). Outputs must not overlap the inputs.
  void forward(Index batch, const Scalar* x, const Scalar* h0, Scalar* h_n, Scalar* out,
               int threads) override;

  const StackSpec& spec() const noexcept { return spec_; }

 private:
  void reserve(Index batch);

  StackSpec spec_;
  std::vector<detail::ForwardWeights<Scalar>> layers_;  // layer-major, forward then reverse
  RowMatrix<Scalar> gx_, gh_, records_, zeros_;  // scratch: (B, 3H), (B, 3H), (B, 4H), (B, H)
  RowMatrix<Scalar> between_[2];                 // layers' outputs, two directions: (B, 2H)
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET
