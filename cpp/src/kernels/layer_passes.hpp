// The passes of one layer-direction over a sequence, each in a file of its own:
// layer_forward.cpp (split by rows, the training forward among them), layer_forward_units.cpp
// (inference split by hidden units) and layer_backward.cpp. Each call reads the thread count
// once, at its entry, and passes it down.
#pragma once

#include "eigengru/sequence.hpp"
#include "eigengru/weights.hpp"
#include "training_cache.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

template <typename Scalar>
struct LayerPasses {
  /// The forward recurrence, each of `threads` threads owning a slice of the batch's rows for
  /// the whole sequence; with a cache, the training forward, with a recurrent dropout mask
  /// (B, H) or nullptr.
  static void forward_rows(const LayerWeights<Scalar>& w, const Sequence& seq, int threads,
                           const Scalar* x, const Scalar* h0, Scalar* out, Scalar* h_n,
                           TrainingCache<Scalar>* cache, const Scalar* recurrent_mask = nullptr);

  /// The inference forward with `threads` threads (at least 2) each owning a slice of the
  /// hidden units.
  static void forward_units(const LayerWeights<Scalar>& w, const Sequence& seq, int threads,
                            const Scalar* x, const Scalar* h0, Scalar* out, Scalar* h_n);

  /// Backpropagation through time from what `cache` kept, with the forward's thread count
  /// (the library's, read once, if the forward's sequence left it to the library).
  static void backward(TrainingCache<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
                       Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>& grads,
                       bool accumulate_grad_x, bool keep);
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
