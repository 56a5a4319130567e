// A stack of GRU layers, each in one or both directions: torch.nn.GRU's whole computation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "eigengru/layer.hpp"
#include "eigengru/stack_spec.hpp"

namespace eigengru {

namespace detail {
template <typename Scalar>
class StackCacheInterface;
struct Handles;
}  // namespace detail

/// Filled by stack_forward_training(), consumed by stack_backward(): one TrainingCache per layer
/// and direction, and the dropout masks. Same rules as TrainingCache: one backward per forward,
/// a consumed cache keeps its memory for the next forward, clear() releases it, and the class
/// is a movable handle.
template <typename Scalar>
class StackCache {
 public:
  StackCache();
  ~StackCache();
  StackCache(StackCache&&) noexcept;
  StackCache& operator=(StackCache&&) noexcept;

  bool ready() const;
  Index steps() const;
  Index batch() const;
  const StackSpec& spec() const;
  bool has_bias() const;
  std::size_t bytes() const;
  void clear();
  /// The per-sequence dropout masks that the last training forward drew for layer-direction k
  /// (entries 0 or 1/(1-p)): of its input, (B, spec().layer_input_size(k / D)), and of its state,
  /// (B, H); nullptr when that dropout is off or no forward ran.
  const Scalar* input_mask(Index k) const;
  const Scalar* recurrent_mask(Index k) const;

 private:
  friend struct detail::Handles;
  std::unique_ptr<detail::StackCacheInterface<Scalar>> state_;
};

/// Inference. weights: num_layers * directions entries in PyTorch's order (layer-major, forward
/// before reverse), entry l*D + d with input size spec.layer_input_size(l).
/// x (T, B, I); lengths (B) or nullptr; h0 and h_n (L*D, B, H), h0 may be nullptr (zeros);
/// out (T, B, D*H) or nullptr. Directions run concurrently when threads would otherwise idle.
template <typename Scalar>
void stack_forward(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                   Index batch, const Index* lengths, const NoDeduce<Scalar>* x,
                   const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out, NoDeduce<Scalar>* h_n);

/// Training: as stack_forward(), with dropout between layers drawn from dropout_seed, keeping
/// what stack_backward() needs in cache, whose memory it reuses. On an exception the cache is
/// left not ready().
template <typename Scalar>
void stack_forward_training(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                            Index batch, const Index* lengths, const NoDeduce<Scalar>* x,
                            const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out,
                            NoDeduce<Scalar>* h_n, std::uint64_t dropout_seed,
                            StackCache<Scalar>& cache);

/// Backward through the stack_forward_training() that filled cache, which it consumes unless
/// keep_cache (see backward()).
/// grad_out (T, B, D*H) and grad_h_n (L*D, B, H) may be nullptr (zero); grad_x (T, B, I) and
/// grad_h0 (L*D, B, H) are written when not nullptr; grads (L*D entries) are accumulated into.
template <typename Scalar>
void stack_backward(StackCache<Scalar>& cache, const NoDeduce<Scalar>* grad_out,
                    const NoDeduce<Scalar>* grad_h_n, NoDeduce<Scalar>* grad_x,
                    NoDeduce<Scalar>* grad_h0, const LayerGradients<Scalar>* grads,
                    bool keep_cache = false);

}  // namespace eigengru
