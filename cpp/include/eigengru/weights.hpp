// One GRU layer-direction's parameters and their gradients, as non-owning row-major views.
#pragma once

#include "eigengru/nonlinearities.hpp"
#include "eigengru/types.hpp"

namespace eigengru {

/// The gates in the order PyTorch, cuDNN and this library stack them: reset, update, candidate.
enum Gate : int { kReset = 0, kUpdate = 1, kCandidate = 2, kGateCount = 3 };

/// Weights of one layer in one direction, with PyTorch's names, shapes and gate order (r, z, n).
///
/// reset_after = true (PyTorch, cuDNN, ONNX linear_before_reset=1, Keras reset_after=True):
///   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
///   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
///   n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
///   h' = (1 - z) * n + z * h
/// reset_after = false (Cho et al. 2014, ONNX's default, Keras reset_after=False):
///   n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn), the rest unchanged.
/// nonlinearities may replace sigmoid (r, z) and tanh (n), and clip their pre-activations.
template <typename Scalar>
struct LayerWeights {
  Index input_size = 0;
  Index hidden_size = 0;
  bool reset_after = true;
  const Scalar* weight_ih = nullptr;  ///< (3H, I): W_ir, W_iz, W_in stacked
  const Scalar* weight_hh = nullptr;  ///< (3H, H): W_hr, W_hz, W_hn stacked
  const Scalar* bias_ih = nullptr;    ///< (3H), or nullptr for a layer without biases
  const Scalar* bias_hh = nullptr;    ///< (3H), or nullptr for a layer without biases
  Nonlinearities nonlinearities;      ///< last, so that {I, H, reset_after, ...} still builds

  bool has_bias() const { return bias_ih != nullptr; }
};

/// Where backward accumulates (+=) parameter gradients; shapes as in LayerWeights.
/// The bias pointers are ignored for a layer without biases.
template <typename Scalar>
struct LayerGradients {
  Scalar* weight_ih = nullptr;
  Scalar* weight_hh = nullptr;
  Scalar* bias_ih = nullptr;
  Scalar* bias_hh = nullptr;
};

}  // namespace eigengru
