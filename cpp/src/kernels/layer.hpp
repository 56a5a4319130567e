// One GRU layer in one direction over a batch of sequences, in the kernel set: the functions
// that eigengru/layer.hpp declares (and documents) for users, with the set's TrainingCache.
// Work is split over the batch: each thread owns a slice of rows for the whole sequence.
#pragma once

#include "eigengru/sequence.hpp"
#include "eigengru/weights.hpp"
#include "matrix_types.hpp"
#include "training_cache.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

template <typename Scalar>
void forward(const LayerWeights<Scalar>& weights, const Sequence& seq, const Scalar* x,
             const Scalar* h0, Scalar* out, Scalar* h_n);

/// recurrent_mask: the stack's per-sequence recurrent dropout mask (B, H), or nullptr.
template <typename Scalar>
void forward_training(const LayerWeights<Scalar>& weights, const Sequence& seq, const Scalar* x,
                      const Scalar* h0, Scalar* out, Scalar* h_n, TrainingCache<Scalar>& cache,
                      const Scalar* recurrent_mask = nullptr);

template <typename Scalar>
void backward(TrainingCache<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
              Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>& grads,
              bool accumulate_grad_x, bool keep_cache);

}  // namespace eigengru::EIGENGRU_KERNEL_SET
