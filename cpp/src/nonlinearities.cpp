#include "eigengru/nonlinearities.hpp"

#include <cmath>

namespace eigengru {
namespace {

bool valid_activation(const Activation& a) {
  if (a.kind < 0 || a.kind >= Activation::kKindCount) return false;
  if (a.kind == Activation::kHardSigmoid) return std::isfinite(a.alpha) && std::isfinite(a.beta);
  return a.alpha == 0.0 && a.beta == 0.0;
}

}  // namespace

bool Nonlinearities::valid() const {
  return valid_activation(gate) && valid_activation(candidate) && std::isfinite(clip) &&
         clip >= 0.0;
}

}  // namespace eigengru
