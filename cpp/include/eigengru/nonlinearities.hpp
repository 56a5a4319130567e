// The nonlinearities of a GRU layer, as ONNX's GRU operator parameterises them.
#pragma once

namespace eigengru {

/// One elementwise function, with ONNX's names and parameters.
struct Activation {
  enum Kind : int {
    kSigmoid = 0,      ///< 1 / (1 + exp(-a))
    kTanh = 1,         ///< tanh(a)
    kHardSigmoid = 2,  ///< max(0, min(1, alpha * a + beta)); ONNX's defaults alpha 0.2, beta 0.5
    kRelu = 3,         ///< max(0, a)
  };
  static constexpr int kKindCount = 4;

  Kind kind = kSigmoid;
  double alpha = 0.0;  ///< kHardSigmoid only; 0 elsewhere
  double beta = 0.0;   ///< kHardSigmoid only; 0 elsewhere

  bool operator==(const Activation& o) const {
    return kind == o.kind && alpha == o.alpha && beta == o.beta;
  }
  bool operator!=(const Activation& o) const { return !(*this == o); }
};

/// f for the reset and update gates, g for the candidate, and ONNX's clip: with clip > 0 every
/// pre-activation is clamped to [-clip, clip] before its function. The default, sigmoid and
/// tanh without clip, is the GRU of PyTorch, cuDNN and Keras; it alone takes the fused
/// single-row step.
struct Nonlinearities {
  Activation gate{Activation::kSigmoid};
  Activation candidate{Activation::kTanh};
  double clip = 0.0;  ///< 0: none

  bool operator==(const Nonlinearities& o) const {
    return gate == o.gate && candidate == o.candidate && clip == o.clip;
  }
  bool operator!=(const Nonlinearities& o) const { return !(*this == o); }
  bool standard() const { return *this == Nonlinearities{}; }
  /// Kinds known, parameters finite, alpha and beta zero where the kind takes none, clip
  /// finite and not negative.
  bool valid() const;
};

}  // namespace eigengru
