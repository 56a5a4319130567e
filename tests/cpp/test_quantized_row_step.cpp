// The fused batch-1 quantized step (cpp/src/kernels/quantized_row_step.hpp) against the
// unfused one it replaces, the tiled products followed by the batched gate pass: the same
// values bit for bit, int8 and bfloat16, from a projected input or from the input's own
// product, with and without biases, from one panel of units (16) to three groups (144), and
// input sizes that fill whole groups or not. Layers the fused step cannot take (a hidden size
// off the panels, the reset before the product, other gate functions, a CPU without the
// dot-product instruction) are refused. Compiled once per kernel set with the library's
// internal headers.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "eigengru/quantized.hpp"
#include "kernel_set_test.hpp"
#include "quantized_layer.hpp"
#include "quantized_row_step.hpp"

namespace {

using eigengru::Index;
using eigengru::Precision;
using eigengru_test::check;
namespace detail = kernels::detail;

struct RandomLayer {
  std::vector<float> w_ih, w_hh, b_ih, b_hh;
  eigengru::LayerWeights<float> weights;

  RandomLayer(Index I, Index H, bool reset_after, bool bias, std::mt19937& gen) {
    std::uniform_real_distribution<float> u(-0.3f, 0.3f);
    auto random = [&](Index n) {
      std::vector<float> v(n);
      for (auto& e : v) e = u(gen);
      return v;
    };
    w_ih = random(3 * H * I), w_hh = random(3 * H * H), b_ih = random(3 * H), b_hh = random(3 * H);
    weights = {I,
               H,
               reset_after,
               w_ih.data(),
               w_hh.data(),
               bias ? b_ih.data() : nullptr,
               bias ? b_hh.data() : nullptr};
  }
};

/// Whether this kernel set, on this CPU, has a dot-product kernel for `precision`, and so the
/// fused step.
bool has_row_step(Precision precision) {
  return eigengru_test::expected_quantized_kernel(precision) != "portable";
}

void test_equal_to_unfused(Precision precision, Index I, Index H, bool bias, std::mt19937& gen) {
  const RandomLayer layer(I, H, true, bias, gen);
  const detail::QuantizedLayerWeights w(eigengru::quantize(layer.weights, precision));
  const std::string what = std::string(eigengru::precision_name(precision)) +
                           " I=" + std::to_string(I) + " H=" + std::to_string(H) +
                           (bias ? " with biases" : " without biases");
  check(w.row_step && detail::fits_quantized_row_step(w), what + ": the fused step takes it");
  const Index G = 3 * H;
  std::normal_distribution<float> normal;
  std::vector<float> x(I), h0(H);
  for (auto& v : x) v = normal(gen);
  for (auto& v : h0) v = 0.9f * std::tanh(normal(gen));
  detail::QuantizedStepScratch s(w, 1, 1);

  // Unfused: the input's product, the state's, then the gate pass.
  std::vector<float> gx(G), gh(G), want(H);
  w.w_ih.quantize(x.data(), I, 1, s.input);
  w.w_ih.multiply(s.input, 1, gx.data(), G, w.input_bias.data());
  w.w_hh.quantize(h0.data(), H, 1, s.state);
  w.w_hh.multiply(s.state, 1, gh.data(), G, nullptr);
  detail::forward_reset_after<float>(H, gx.data(), gh.data(), w.bias_hn_or_null(), h0.data(),
                                     nullptr, want.data(), nullptr);
  bool moved = false;
  for (Index j = 0; j < H; ++j) moved = moved || want[j] != h0[j];
  check(moved, what + ": the step changes the state");

  std::vector<float> from_gx = h0, from_x = h0;
  detail::quantized_row_step(w, nullptr, gx.data(), s.state, from_gx.data());
  detail::quantized_row_step(w, &s.input, nullptr, s.state, from_x.data());
  check(from_gx == want, what + ": from the projected input, the unfused step's values");
  check(from_x == want, what + ": from the input's product, the unfused step's values");

  // Through quantized_step, as the sequence forward calls it.
  std::vector<float> stepped = h0;
  detail::quantized_step(w, 1, gx.data(), stepped.data(), s, [](Index) { return true; });
  check(stepped == want, what + ": quantized_step gives the same values");
}

void test_refusals(Precision precision, std::mt19937& gen) {
  const std::string name = eigengru::precision_name(precision);
  const RandomLayer off_panels(8, 40, true, true, gen), before(8, 32, false, true, gen);
  check(!detail::QuantizedLayerWeights(eigengru::quantize(off_panels.weights, precision)).row_step,
        name + ": 40 units are not whole panels");
  check(!detail::QuantizedLayerWeights(eigengru::quantize(before.weights, precision)).row_step,
        name + ": the reset before the product is not fused");
  RandomLayer other(8, 32, true, true, gen);
  other.weights.nonlinearities.gate = {eigengru::Activation::kHardSigmoid, 0.2, 0.5};
  check(!detail::QuantizedLayerWeights(eigengru::quantize(other.weights, precision)).row_step,
        name + ": other gate functions are not fused");
}

}  // namespace

int main() {
  std::mt19937 gen(5);
  for (const Precision precision : {Precision::kInt8, Precision::kBfloat16}) {
    if (!has_row_step(precision)) {
      // Then no layer takes the fused step: the tiled products' fallback runs instead.
      const RandomLayer layer(16, 64, true, true, gen);
      check(!detail::QuantizedLayerWeights(eigengru::quantize(layer.weights, precision)).row_step,
            std::string(eigengru::precision_name(precision)) +
                ": no fused step without the dot-product instruction in this kernel set");
      continue;
    }
    for (const Index H : {16, 32, 48, 64, 80, 144})
      for (const Index I : {3, 16, 37})
        for (const bool bias : {true, false}) test_equal_to_unfused(precision, I, H, bias, gen);
    test_refusals(precision, gen);
  }
  return eigengru_test::finish();
}
