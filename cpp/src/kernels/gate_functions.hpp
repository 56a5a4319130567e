// A layer's gate nonlinearities applied to one chunk of a row, with their derivatives: the
// standard sigmoid and tanh, inlined, and the others of ONNX's activations with its clip.
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

/// A layer's functions: f for r and z, g for n, with their slopes from their values.
template <typename Scalar>
class GateFunctions {
 public:
  explicit GateFunctions(const Nonlinearities& n)
      : gate_(n.gate, n.clip), candidate_(n.candidate, n.clip) {}

  Chunk<Scalar> gate(const Chunk<Scalar>& a) const { return gate_.apply(a); }
  Chunk<Scalar> candidate(const Chunk<Scalar>& a) const { return candidate_.apply(a); }
  Chunk<Scalar> gate_slope(const Chunk<Scalar>& y) const { return gate_.slope(y); }
  Chunk<Scalar> candidate_slope(const Chunk<Scalar>& y) const { return candidate_.slope(y); }

 private:
  ChunkActivation<Scalar> gate_, candidate_;
};

/// The standard sigmoid and tanh, as GateFunctions' interface, inlined.
template <typename Scalar>
struct StandardFunctions {
  __attribute__((always_inline)) Chunk<Scalar> gate(const Chunk<Scalar>& a) const {
    return a.logistic();
  }
  __attribute__((always_inline)) Chunk<Scalar> candidate(const Chunk<Scalar>& a) const {
    return a.tanh();
  }
  __attribute__((always_inline)) Chunk<Scalar> gate_slope(const Chunk<Scalar>& y) const {
    return y * (1 - y);
  }
  __attribute__((always_inline)) Chunk<Scalar> candidate_slope(const Chunk<Scalar>& y) const {
    return 1 - y * y;
  }
};

/// body(functions) with a layer's functions: StandardFunctions for nullptr, so that the
/// standard gate passes are compiled apart from the general ones, with no test in their loops.
template <typename Scalar, typename Body>
__attribute__((always_inline)) inline void with_functions(const GateFunctions<Scalar>* f,
                                                          Body body) {
  if (f == nullptr)
    body(StandardFunctions<Scalar>{});
  else
    body(*f);
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
