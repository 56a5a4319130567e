// Random models and the error measure that the C++ tests compare results with.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "eigengru/model_file.hpp"

namespace eigengru_test {

/// A model of `spec` whose parameters are drawn uniformly from (-bound, bound).
template <typename Scalar>
eigengru::Model<Scalar> random_model(const eigengru::StackSpec& spec, unsigned seed, double bound) {
  eigengru::Model<Scalar> m;
  m.spec = spec;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-bound, bound);
  const eigengru::Index H = spec.hidden_size, D = spec.directions();
  for (eigengru::Index k = 0; k < spec.num_layers * D; ++k)
    for (eigengru::Index count : {3 * H * spec.layer_input_size(k / D), 3 * H * H, 3 * H, 3 * H}) {
      std::vector<Scalar> p(static_cast<std::size_t>(count));
      for (auto& v : p) v = static_cast<Scalar>(u(gen));
      m.parameters.push_back(p);
    }
  return m;
}

/// max |a - b| / max |b| (b the expected values).
template <typename Scalar>
double max_relative_error(const std::vector<Scalar>& a, const std::vector<Scalar>& b) {
  double err = 0, scale = 1e-30;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return err / scale;
}

}  // namespace eigengru_test
