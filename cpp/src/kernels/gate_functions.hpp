// The gate nonlinearities of a layer other than the standard sigmoid and tanh (ONNX's
// activations and clip), applied to one chunk of a row, with their derivatives.
//
// The backward reads only a function's outputs (the gate records hold r, z and n), so each
// derivative is written in terms of the output y. With clip c, a pre-activation a outside
// (-c, c) was clamped and its derivative is zero: that is the case exactly when y lies outside
// (f(-c), f(c)) for the increasing functions here, up to ties where f is flat anyway.
#pragma once

#include <algorithm>

#include <Eigen/Core>

#include "eigengru/nonlinearities.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// One vector register of a row's values.
template <typename Scalar>
using Chunk = Eigen::Array<Scalar, kLanes<Scalar>, 1>;

/// One Activation with its clip, in the chunk's scalar type.
template <typename Scalar>
class ChunkActivation {
 public:
  ChunkActivation(const Activation& f, double clip)
      : kind_(f.kind),
        alpha_(static_cast<Scalar>(f.alpha)),
        beta_(static_cast<Scalar>(f.beta)),
        clip_(static_cast<Scalar>(clip)) {
    if (clip_ > 0) {  // the outputs at the clamp, by the same arithmetic as apply()
      const Scalar low = unclipped(Chunk<Scalar>::Constant(-clip_))(0);
      const Scalar high = unclipped(Chunk<Scalar>::Constant(clip_))(0);
      low_ = std::min(low, high);
      high_ = std::max(low, high);
    }
  }

  Chunk<Scalar> apply(Chunk<Scalar> a) const {
    if (clip_ > 0) a = a.max(-clip_).min(clip_);
    return unclipped(a);
  }

  /// df/da where f(a) = y.
  Chunk<Scalar> slope(const Chunk<Scalar>& y) const {
    const Chunk<Scalar> zero = Chunk<Scalar>::Zero();
    Chunk<Scalar> s;
    switch (kind_) {
      case Activation::kSigmoid: s = y * (1 - y); break;
      case Activation::kTanh: s = 1 - y * y; break;
      case Activation::kHardSigmoid:
        s = (y > Scalar(0) && y < Scalar(1)).select(Chunk<Scalar>::Constant(alpha_), zero);
        break;
      case Activation::kRelu: s = (y > Scalar(0)).select(Chunk<Scalar>::Ones(), zero); break;
    }
    if (clip_ > 0) s = (y > low_ && y < high_).select(s, zero);
    return s;
  }

 private:
  Chunk<Scalar> unclipped(const Chunk<Scalar>& a) const {
    switch (kind_) {
      case Activation::kSigmoid: return a.logistic();
      case Activation::kTanh: return a.tanh();
      case Activation::kHardSigmoid: return (alpha_ * a + beta_).max(Scalar(0)).min(Scalar(1));
      case Activation::kRelu: return a.max(Scalar(0));
    }
    return a;
  }

  Activation::Kind kind_;
  Scalar alpha_, beta_, clip_;
  Scalar low_ = 0, high_ = 0;  // f(-clip) and f(clip), ordered
};

/// A layer's functions: f for r and z, g for n.
template <typename Scalar>
struct GateFunctions {
  ChunkActivation<Scalar> gate, candidate;

  explicit GateFunctions(const Nonlinearities& n)
      : gate(n.gate, n.clip), candidate(n.candidate, n.clip) {}
};

// The gate passes take a `const GateFunctions*`, nullptr for the standard sigmoid and tanh:
// those keep their own inlined code, and a layer's functions are the same for every chunk, so
// the test is predicted.

template <typename Scalar>
__attribute__((always_inline)) inline Chunk<Scalar> gate_of(const GateFunctions<Scalar>* f,
                                                            const Chunk<Scalar>& a) {
  return f == nullptr ? Chunk<Scalar>(a.logistic()) : f->gate.apply(a);
}

template <typename Scalar>
__attribute__((always_inline)) inline Chunk<Scalar> candidate_of(const GateFunctions<Scalar>* f,
                                                                 const Chunk<Scalar>& a) {
  return f == nullptr ? Chunk<Scalar>(a.tanh()) : f->candidate.apply(a);
}

/// d gate / d pre-activation, from the gate's value.
template <typename Scalar>
__attribute__((always_inline)) inline Chunk<Scalar> gate_slope(const GateFunctions<Scalar>* f,
                                                               const Chunk<Scalar>& y) {
  return f == nullptr ? Chunk<Scalar>(y * (1 - y)) : f->gate.slope(y);
}

template <typename Scalar>
__attribute__((always_inline)) inline Chunk<Scalar> candidate_slope(const GateFunctions<Scalar>* f,
                                                                    const Chunk<Scalar>& y) {
  return f == nullptr ? Chunk<Scalar>(1 - y * y) : f->candidate.slope(y);
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
