// One GRU layer in one direction over a batch of sequences: inference forward, training forward
// and backward (backpropagation through time). All arrays are row-major, as in NumPy and PyTorch:
//   x (T, B, I), out (T, B, H) (rows seq.out_stride apart), h0 and h_n (B, H).
// Work is split over the batch: each thread owns a slice of rows for the whole sequence.
//
// Thread safety: every function may run concurrently with any other on distinct output buffers
// and caches; weights are only read.
#pragma once

#include "eigengru/sequence.hpp"
#include "eigengru/training_cache.hpp"
#include "eigengru/types.hpp"
#include "eigengru/weights.hpp"

namespace eigengru {

/// Inference: out[t] = h_t for t = 0..T-1 and h_n = h_T, saving nothing.
/// h0 may be nullptr (zeros); out may be nullptr when only h_n is wanted.
/// Throws std::invalid_argument on non-positive sizes, missing weights or lengths out of range.
template <typename Scalar>
void forward(const LayerWeights<Scalar>& weights, const Sequence& seq, const NoDeduce<Scalar>* x,
             const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out, NoDeduce<Scalar>* h_n);

/// Training: the same outputs as forward(), and fills cache with what backward() needs
/// (replacing whatever it held, reusing its memory). On an exception the cache is left not
/// ready().
template <typename Scalar>
void forward_training(const LayerWeights<Scalar>& weights, const Sequence& seq,
                      const NoDeduce<Scalar>* x, const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out,
                      NoDeduce<Scalar>* h_n, TrainingCache<Scalar>& cache);

/// Backward through the forward_training() that filled cache, which it consumes unless
/// keep_cache (then it works on a copy of the gate records, so that backward may run again, as
/// with PyTorch's retain_graph).
/// grad_out (T, B, H) and grad_h_n (B, H) are dL/d out and dL/d h_n; either may be nullptr (zero).
/// grad_out's rows lie as out's did. Writes grad_x (T, B, I) (adds to it when accumulate_grad_x)
/// and grad_h0 (B, H) when not nullptr; accumulates (+=) the parameter gradients into grads.
/// Gradients at padded steps are zero. Throws std::logic_error when the cache is not ready().
template <typename Scalar>
void backward(TrainingCache<Scalar>& cache, const NoDeduce<Scalar>* grad_out,
              const NoDeduce<Scalar>* grad_h_n, NoDeduce<Scalar>* grad_x, NoDeduce<Scalar>* grad_h0,
              const LayerGradients<Scalar>& grads, bool accumulate_grad_x = false,
              bool keep_cache = false);

}  // namespace eigengru
