// The quantized models' passes: the stack forward over a sequence and the step-by-step stream.
#pragma once

#include <vector>

#include "eigengru/quantized.hpp"
#include "kernel_set.hpp"
#include "matrix_types.hpp"
#include "quantized_layer.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

/// eigengru::QuantizedGRU's packed stack: each layer-direction's rows are split among the
/// threads, each thread running its rows through every step, so that no step waits for another.
class QuantizedStack final : public eigengru::detail::QuantizedStackInterface {
 public:
  /// Arguments already checked (layers matching spec).
  QuantizedStack(const StackSpec& spec, const QuantizedLayer* layers);

  void forward(Index steps, Index batch, const Index* lengths, const float* x, const float* h0,
               float* out, float* h_n, int threads) const override;

 private:
  StackSpec spec_;
  std::vector<detail::QuantizedLayerWeights> layers_;
};

/// Stream (eigengru/stream.hpp) of a quantized stack: the numbers of quantized_stack_forward()
/// over the same sequence, bit for bit; allocates nothing after construction.
class QuantizedStream final : public eigengru::detail::StreamInterface<float> {
 public:
  /// Arguments already checked (unidirectional, forward in time, layers matching spec).
  QuantizedStream(const StackSpec& spec, const QuantizedLayer* layers, Index batch);

  void step(const float* x, float* out) noexcept override;
  void reset() noexcept override;
  void reset(const float* h0) noexcept override;
  const float* state() const noexcept override { return state_.data(); }

 private:
  StackSpec spec_;
  Index batch_;
  std::vector<detail::QuantizedLayerWeights> layers_;
  std::vector<detail::QuantizedStepScratch> scratch_;
  Vector<float> state_;  // (L, B, H)
  RowMatrix<float> gx_;  // (B, 3H)
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET
