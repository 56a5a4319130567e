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
    return total + sizeof(Scalar) * (between_[0].size() + between_[1].size());
  }
  void clear() override { *this = StackCache(); }

 private:
  friend struct detail::StackPasses<Scalar>;
  bool ready_ = false;
  StackSpec spec_;
  Index steps_ = 0, batch_ = 0;
  std::vector<TrainingCache<Scalar>> layers_;        // layer-major, forward before reverse
  std::vector<RowMatrix<Scalar>> dropout_masks_;     // layer l >= 1: (T*B, D*H), 0 or 1/(1-p)
  RowMatrix<Scalar> between_[2];  // layer outputs below the top, then their gradients
};

/// Inference. weights: num_layers * directions entries in PyTorch's order (layer-major, forward
/// before reverse), entry l*D + d with input size spec.layer_input_size(l).
/// x (T, B, I); lengths (B) or nullptr; h0 and h_n (L*D, B, H), h0 may be nullptr (zeros);
/// out (T, B, D*H) or nullptr. Directions run concurrently when threads would otherwise idle.
template <typename Scalar>
void stack_forward(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                   Index batch, const Index* lengths, const NoDeduce<Scalar>* x, const NoDeduce<Scalar>* h0,
                   NoDeduce<Scalar>* out, NoDeduce<Scalar>* h_n);

/// Training: as stack_forward(), with dropout between layers drawn from dropout_seed, keeping
/// what stack_backward() needs in cache, whose memory it reuses. On an exception the cache is
/// left not ready().
template <typename Scalar>
void stack_forward_training(const StackSpec& spec, const LayerWeights<Scalar>* weights,
                            Index steps, Index batch, const Index* lengths, const NoDeduce<Scalar>* x,
                            const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out, NoDeduce<Scalar>* h_n, std::uint64_t dropout_seed,
                            StackCache<Scalar>& cache);

/// Backward through the stack_forward_training() that filled cache, which it consumes unless
/// keep_cache (see backward()).
/// grad_out (T, B, D*H) and grad_h_n (L*D, B, H) may be nullptr (zero); grad_x (T, B, I) and
/// grad_h0 (L*D, B, H) are written when not nullptr; grads (L*D entries) are accumulated into.
template <typename Scalar>
void stack_backward(StackCache<Scalar>& cache, const NoDeduce<Scalar>* grad_out, const NoDeduce<Scalar>* grad_h_n,
                    NoDeduce<Scalar>* grad_x, NoDeduce<Scalar>* grad_h0, const LayerGradients<Scalar>* grads,
                    bool keep_cache = false);

}  // namespace eigengru::EIGENGRU_KERNEL_SET
