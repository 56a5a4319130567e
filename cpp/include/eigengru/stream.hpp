// Step-by-step inference for real-time use: a stateful stack that advances one time step per
// call, allocating nothing after construction.
#pragma once

#include <memory>

#include "eigengru/quantized.hpp"
#include "eigengru/stack_spec.hpp"
#include "eigengru/types.hpp"
#include "eigengru/weights.hpp"

namespace eigengru {

namespace detail {
template <typename Scalar>
class StreamInterface;
}  // namespace detail

/// A unidirectional stack of GRU layers run one time step at a time over `batch` independent
/// streams (1 for a single signal). The constructor copies and packs the weights and allocates
/// every buffer; step() and reset() then allocate nothing, take no locks and do not throw, so
/// they may run on a real-time thread. step() gives the numbers of stack_forward() over the same
/// sequence, bit for bit at one thread.
///
/// Thread safety: one Stream belongs to one thread at a time; distinct Streams are independent.
template <typename Scalar>
class Stream {
 public:
  /// weights: spec.num_layers entries (PyTorch order). Throws std::invalid_argument for a
  /// bidirectional spec (a stream cannot see the future) or weights that do not match it.
  Stream(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index batch = 1);
  /// A quantized stack (eigengru/quantized.hpp), which runs in float: Stream<float> only.
  /// layers: spec.num_layers entries, of one precision. Throws std::invalid_argument as above,
  /// and for Stream<double>.
  Stream(const StackSpec& spec, const QuantizedLayer* layers, Index batch = 1);
  ~Stream();
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;

  /// One step: x (batch, input_size) in, the top layer's new state (batch, hidden_size) out.
  /// x and out may not overlap the stream's own state.
  void step(const Scalar* x, Scalar* out) noexcept;

  /// Sets every layer's state to zero.
  void reset() noexcept;
  /// Sets the state from h0 (num_layers, batch, hidden_size).
  void reset(const Scalar* h0) noexcept;

  /// The current state, (num_layers, batch, hidden_size).
  const Scalar* state() const noexcept;
  const StackSpec& spec() const noexcept { return spec_; }
  Index batch() const noexcept { return batch_; }

 private:
  StackSpec spec_;
  Index batch_;
  std::unique_ptr<detail::StreamInterface<Scalar>> state_;
};

}  // namespace eigengru
