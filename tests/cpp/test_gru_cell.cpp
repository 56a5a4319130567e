// GRUCell: its forward is a Stream's first step, and its backward is the derivative of its
// forward, checked against central differences in double for both formulations, with the
// standard functions and with others (hard sigmoid, relu, clip).
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"

using eigengru::Index;
using eigengru_test::check;

namespace {

struct Case {
  Index B = 3, I = 5, H = 8;
  bool reset_after = true;
  eigengru::Nonlinearities functions;
  std::vector<double> w_ih, w_hh, b_ih, b_hh, x, h;

  Case(bool reset_after_, const eigengru::Nonlinearities& functions_)
      : reset_after(reset_after_), functions(functions_) {
    std::mt19937 gen(reset_after ? 1 : 2);
    auto fill = [&](std::vector<double>& v, Index n) {
      eigengru_test::fill_uniform(v, n, gen, 0.7);
    };
    fill(w_ih, 3 * H * I);
    fill(w_hh, 3 * H * H);
    fill(b_ih, 3 * H);
    fill(b_hh, 3 * H);
    fill(x, B * I);
    fill(h, B * H);
  }

  eigengru::LayerWeights<double> weights() const {
    eigengru::LayerWeights<double> w;
    w.input_size = I;
    w.hidden_size = H;
    w.reset_after = reset_after;
    w.weight_ih = w_ih.data();
    w.weight_hh = w_hh.data();
    w.bias_ih = b_ih.data();
    w.bias_hh = b_hh.data();
    w.nonlinearities = functions;
    return w;
  }

  /// L = sum(c * h_next) for fixed random c, from a cell built on the current values.
  double loss(const std::vector<double>& c) const {
    eigengru::GRUCell<double> cell(weights());
    std::vector<double> next(B * H);
    cell.forward(B, x.data(), h.data(), next.data(), nullptr);
    double total = 0;
    for (Index k = 0; k < B * H; ++k) total += c[k] * next[k];
    return total;
  }
};

/// What a failed check names.
std::string describe(bool reset_after, const eigengru::Nonlinearities& f) {
  return std::string("reset_after=") + (reset_after ? "true" : "false") + ", functions " +
         std::to_string(f.gate.kind) + "/" + std::to_string(f.candidate.kind) + " clip " +
         std::to_string(f.clip);
}

void test_forward_is_a_streams_step(bool reset_after, const eigengru::Nonlinearities& f) {
  Case k(reset_after, f);
  eigengru::StackSpec spec;
  spec.input_size = k.I;
  spec.hidden_size = k.H;
  spec.reset_after = reset_after;
  spec.nonlinearities = f;
  const auto w = k.weights();
  eigengru::Stream<double> stream(spec, &w, k.B);
  stream.reset(k.h.data());
  std::vector<double> streamed(k.B * k.H), stepped(k.B * k.H), record(k.B * 4 * k.H);
  stream.step(k.x.data(), streamed.data());
  eigengru::GRUCell<double> cell(w);
  cell.forward(k.B, k.x.data(), k.h.data(), stepped.data(), record.data());
  check(stepped == streamed, "forward equals a stream's step, " + describe(reset_after, f));
}

void test_backward_is_the_derivative(bool reset_after, const eigengru::Nonlinearities& f) {
  Case k(reset_after, f);
  const Index B = k.B, I = k.I, H = k.H;
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> c(B * H);
  for (double& v : c) v = u(gen);

  eigengru::GRUCell<double> cell(k.weights());
  std::vector<double> next(B * H), record(B * 4 * H), dx(B * I), dh(B * H);
  std::vector<double> g_ih(3 * H * I, 0.5), g_hh(3 * H * H, 0.5), gb_ih(3 * H, 0.5),
      gb_hh(3 * H, 0.5);  // accumulate onto 0.5
  cell.forward(B, k.x.data(), k.h.data(), next.data(), record.data());
  cell.backward(B, k.x.data(), k.h.data(), record.data(), c.data(), dx.data(), dh.data(),
                {g_ih.data(), g_hh.data(), gb_ih.data(), gb_hh.data()}, true);

  double worst = 0;
  auto compare = [&](std::vector<double>& values, const std::vector<double>& analytic,
                     double offset) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double saved = values[i], eps = 1e-6;
      values[i] = saved + eps;
      const double plus = k.loss(c);
      values[i] = saved - eps;
      const double minus = k.loss(c);
      values[i] = saved;
      worst = std::max(worst, std::abs((plus - minus) / (2 * eps) - (analytic[i] - offset)));
    }
  };
  compare(k.x, dx, 0);
  compare(k.h, dh, 0);
  compare(k.w_ih, g_ih, 0.5);
  compare(k.w_hh, g_hh, 0.5);
  compare(k.b_ih, gb_ih, 0.5);
  compare(k.b_hh, gb_hh, 0.5);
  check(worst < 1e-7, "backward matches central differences, " + describe(reset_after, f) +
                          " (worst " + std::to_string(worst) + ")");
}

}  // namespace

int main() {
  if (!eigengru_test::requested_kernel_set_runs()) return eigengru_test::kSkipped;
  using eigengru::Activation;
  eigengru::Nonlinearities hard_relu_clipped, clipped;
  hard_relu_clipped.gate = {Activation::kHardSigmoid, 0.3, 0.45};
  hard_relu_clipped.candidate = {Activation::kRelu};
  hard_relu_clipped.clip = 1.5;
  clipped.clip = 0.8;
  for (bool reset_after : {true, false})
    for (const auto& f : {eigengru::Nonlinearities{}, hard_relu_clipped, clipped}) {
      test_forward_is_a_streams_step(reset_after, f);
      test_backward_is_the_derivative(reset_after, f);
    }
  return eigengru_test::finish();
}
