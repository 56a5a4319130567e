// A stack of GRU layers, each in one or both directions: torch.nn.GRU's whole computation, in
// the kernel set (the public declarations are eigengru/stack.hpp's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eigengru/stack_spec.hpp"
#include "layer.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

namespace detail {
template <typename Scalar>
struct StackPasses;
}

/// Filled by stack_forward_training(), consumed by stack_backward(): one TrainingCache per layer
/// and direction, and the dropout masks. Same rules as TrainingCache: one backward per forward,
/// and a consumed cache keeps its memory for the next forward; clear() releases it.
template <typename Scalar>
class StackCache final : public eigengru::detail::StackCacheInterface<Scalar> {
 public:
  bool ready() const override { return ready_; }
  Index steps() const override { return steps_; }
  Index batch() const override { return batch_; }
  const StackSpec& spec() const override { return spec_; }
  bool has_bias() const override { return !layers_.empty() && layers_.front().has_bias(); }
  std::size_t bytes() const override {
    std::size_t total = 0;
    for (const auto& layer : layers_) total += layer.bytes();
    for (const auto& mask : dropout_masks_) total += sizeof(Scalar) * mask.size();
    for (const auto& mask : input_masks_) total += sizeof(Scalar) * mask.size();
    for (const auto& input : masked_inputs_) total += sizeof(Scalar) * input.size();
    return total + sizeof(Scalar) * (between_[0].size() + between_[1].size());
  }
  void clear() override { *this = StackCache(); }
  const Scalar* input_mask(Index k) const override {
    return k >= 0 && k < static_cast<Index>(input_masks_.size()) && input_masks_[k].size() > 0
               ? input_masks_[k].data()
               : nullptr;
  }
  const Scalar* recurrent_mask(Index k) const override {
    return k >= 0 && k < static_cast<Index>(layers_.size()) ? layers_[k].recurrent_mask() : nullptr;
  }

 private:
  friend struct detail::StackPasses<Scalar>;
  bool ready_ = false;
  StackSpec spec_;
  Index steps_ = 0, batch_ = 0;
  std::vector<TrainingCache<Scalar>> layers_;     // layer-major, forward before reverse
  std::vector<RowMatrix<Scalar>> dropout_masks_;  // layer l >= 1: (T*B, D*H), 0 or 1/(1-p)
  std::vector<RowMatrix<Scalar>> input_masks_;    // layer-direction k: (B, its input), or empty
  RowMatrix<Scalar> masked_inputs_[2];            // a layer's input times each direction's mask
  RowMatrix<Scalar> between_[2];  // layer outputs below the top, then their gradients
};

// The functions that eigengru/stack.hpp declares (and documents) for users, with the set's
// StackCache.
template <typename Scalar>
void stack_forward(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                   Index batch, const Index* lengths, const Scalar* x, const Scalar* h0,
                   Scalar* out, Scalar* h_n);

template <typename Scalar>
void stack_forward_training(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                            Index batch, const Index* lengths, const Scalar* x, const Scalar* h0,
                            Scalar* out, Scalar* h_n, std::uint64_t dropout_seed,
                            StackCache<Scalar>& cache);

template <typename Scalar>
void stack_backward(StackCache<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
                    Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>* grads,
                    bool keep_cache);

}  // namespace eigengru::EIGENGRU_KERNEL_SET
