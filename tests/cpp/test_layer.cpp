// The C++ core used as a C++ application would: raw buffers, no Python.
// Checks training forward against inference, every gradient against central differences (double),
// the one-backward-per-forward rule, and argument errors. Exits non-zero on the first failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"

namespace {

using eigengru_test::check;

struct Problem {
  eigengru::Index T, B, I, H;
  std::vector<double> w_ih, w_hh, b_ih, b_hh, x, h0, g_out, g_hn;

  explicit Problem(unsigned seed, eigengru::Index steps = 5, eigengru::Index batch = 3,
                   eigengru::Index inputs = 4, eigengru::Index hidden = 7)
      : T(steps), B(batch), I(inputs), H(hidden) {
    std::mt19937 gen(seed);
    auto fill = [&](std::vector<double>& v, eigengru::Index n) {
      eigengru_test::fill_uniform(v, n, gen, 0.7);
    };
    fill(w_ih, 3 * H * I);
    fill(w_hh, 3 * H * H);
    fill(b_ih, 3 * H);
    fill(b_hh, 3 * H);
    fill(x, T * B * I);
    fill(h0, B * H);
    fill(g_out, T * B * H);
    fill(g_hn, B * H);
  }

  eigengru::LayerWeights<double> weights(bool reset_after) const {
    return {I, H, reset_after, w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data()};
  }

  // L = sum(out * g_out) + sum(h_n * g_hn)
  double loss(bool reset_after) const {
    std::vector<double> out(T * B * H), h_n(B * H);
    eigengru::forward(weights(reset_after), eigengru::Sequence{T, B}, x.data(), h0.data(),
                      out.data(), h_n.data());
    double l = 0;
    for (std::size_t k = 0; k < out.size(); ++k) l += out[k] * g_out[k];
    for (std::size_t k = 0; k < h_n.size(); ++k) l += h_n[k] * g_hn[k];
    return l;
  }
};

void test_gradients(bool reset_after) {
  const std::string variant = reset_after ? "reset_after" : "reset_before";
  Problem p(reset_after ? 1 : 2);
  std::vector<double> out(p.T * p.B * p.H), h_n(p.B * p.H), out_t(out.size()), h_n_t(h_n.size());
  eigengru::forward(p.weights(reset_after), eigengru::Sequence{p.T, p.B}, p.x.data(), p.h0.data(),
                    out.data(), h_n.data());
  eigengru::TrainingCache<double> cache;
  eigengru::forward_training(p.weights(reset_after), eigengru::Sequence{p.T, p.B}, p.x.data(),
                             p.h0.data(), out_t.data(), h_n_t.data(), cache);
  check(out == out_t && h_n == h_n_t, variant + ": training forward equals inference forward");

  std::vector<double> dx(p.x.size()), dh0(p.h0.size()), gw_ih(p.w_ih.size()), gw_hh(p.w_hh.size()),
      gb_ih(p.b_ih.size()), gb_hh(p.b_hh.size());
  eigengru::LayerGradients<double> grads{gw_ih.data(), gw_hh.data(), gb_ih.data(), gb_hh.data()};
  eigengru::backward(cache, p.g_out.data(), p.g_hn.data(), dx.data(), dh0.data(), grads);
  check(!cache.ready(), variant + ": backward consumes the cache");
  bool threw = false;
  try {
    eigengru::backward(cache, p.g_out.data(), p.g_hn.data(), dx.data(), dh0.data(), grads);
  } catch (const std::logic_error&) {
    threw = true;
  }
  check(threw, variant + ": a second backward throws std::logic_error");

  const double eps = 1e-6;
  auto compare = [&](std::vector<double>& param, const std::vector<double>& grad,
                     const char* name) {
    double worst = 0;
    for (std::size_t k = 0; k < param.size(); ++k) {
      const double saved = param[k];
      param[k] = saved + eps;
      const double up = p.loss(reset_after);
      param[k] = saved - eps;
      const double down = p.loss(reset_after);
      param[k] = saved;
      worst = std::max(worst, std::abs((up - down) / (2 * eps) - grad[k]));
    }
    check(worst < 1e-7, variant + ": " + name + " matches central differences (error " +
                            std::to_string(worst) + ")");
  };
  compare(p.x, dx, "dx");
  compare(p.h0, dh0, "dh0");
  compare(p.w_ih, gw_ih, "dW_ih");
  compare(p.w_hh, gw_hh, "dW_hh");
  compare(p.b_ih, gb_ih, "db_ih");
  compare(p.b_hh, gb_hh, "db_hh");
}

void test_argument_errors() {
  Problem p(3);
  auto w = p.weights(true);
  w.hidden_size = 0;
  std::vector<double> out(p.T * p.B * p.H), h_n(p.B * p.H);
  bool threw = false;
  try {
    eigengru::forward<double>(w, eigengru::Sequence{p.T, p.B}, p.x.data(), nullptr, out.data(),
                              h_n.data());
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("hidden_size") != std::string::npos;
  }
  check(threw, "hidden_size = 0 throws std::invalid_argument naming it");
}

/// The whole stack path (2 layers, both directions, unequal lengths, dropout in training):
/// inference and training forward agree without dropout, backward runs and twice refuses.
/// Mostly here so that the sanitizer build walks every stack code path.
void test_stack_paths() {
  eigengru::StackSpec spec;
  spec.input_size = 3;
  spec.hidden_size = 5;
  spec.num_layers = 2;
  spec.bidirectional = true;
  const eigengru::Index T = 6, B = 3, H = 5, LD = 4;
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  std::vector<std::vector<double>> params;
  std::vector<eigengru::LayerWeights<double>> layers;
  for (eigengru::Index k = 0; k < LD; ++k) {
    const eigengru::Index in = spec.layer_input_size(k / 2);
    for (eigengru::Index n : {3 * H * in, 3 * H * H, 3 * H, 3 * H}) {
      params.emplace_back(static_cast<std::size_t>(n));
      for (auto& v : params.back()) v = u(gen);
    }
    layers.push_back({in, H, true, params[4 * k].data(), params[4 * k + 1].data(),
                      params[4 * k + 2].data(), params[4 * k + 3].data()});
  }
  const eigengru::Index lengths[B] = {6, 2, 4};
  std::vector<double> x(T * B * 3), out(T * B * 2 * H), out_t(out.size()), h_n(LD * B * H),
      h_n_t(h_n.size());
  for (auto& v : x) v = u(gen);
  eigengru::stack_forward(spec, layers.data(), T, B, lengths, x.data(), nullptr, out.data(),
                          h_n.data());
  eigengru::StackCache<double> cache;
  eigengru::stack_forward_training(spec, layers.data(), T, B, lengths, x.data(), nullptr,
                                   out_t.data(), h_n_t.data(), 0, cache);
  check(out == out_t && h_n == h_n_t, "stack: training forward equals inference forward");
  check(out[(5 * B + 1) * 2 * H] == 0.0, "stack: outputs past a row's length are zero");

  std::vector<std::vector<double>> grad_buffers;
  std::vector<eigengru::LayerGradients<double>> grads;
  for (const auto& p : params) grad_buffers.emplace_back(p.size(), 0.0);
  for (eigengru::Index k = 0; k < LD; ++k)
    grads.push_back({grad_buffers[4 * k].data(), grad_buffers[4 * k + 1].data(),
                     grad_buffers[4 * k + 2].data(), grad_buffers[4 * k + 3].data()});
  std::vector<double> dx(x.size()), dh0(h_n.size());
  spec.dropout = 0.3;
  eigengru::stack_forward_training(spec, layers.data(), T, B, lengths, x.data(), nullptr,
                                   out_t.data(), h_n_t.data(), 42, cache);
  eigengru::stack_backward(cache, out.data(), h_n.data(), dx.data(), dh0.data(), grads.data(),
                           /*keep_cache=*/true);
  eigengru::stack_backward(cache, out.data(), h_n.data(), dx.data(), dh0.data(), grads.data());
  bool finite = true;
  for (double v : dx) finite = finite && std::isfinite(v);
  check(finite, "stack: backward with dropout and lengths gives finite gradients");
  bool threw = false;
  try {
    eigengru::stack_backward(cache, out.data(), h_n.data(), dx.data(), dh0.data(), grads.data());
  } catch (const std::logic_error&) {
    threw = true;
  }
  check(threw, "stack: a backward after the consuming one throws");
}

// A batch smaller than the thread count splits the hidden units over the threads in inference
// (uneven parts, a length below T, reverse); training never does, so the two forwards must agree.
void test_units_split(bool reset_after) {
  const std::string variant = reset_after ? "reset_after" : "reset_before";
  const int before = eigengru::get_num_threads();
  eigengru::set_num_threads(3);
  const Problem p(reset_after ? 3 : 4, 9, 1, 5, 200);  // batch 1, 200 units: split on any machine
  std::vector<double> out(p.T * p.B * p.H), h_n(p.B * p.H), out_t(out.size()), h_n_t(h_n.size());
  const eigengru::Index lengths[] = {6};
  eigengru::Sequence seq{p.T, p.B, lengths, true};
  const auto split_before = eigengru::path_count(eigengru::Path::kForwardByUnits);
  eigengru::forward(p.weights(reset_after), seq, p.x.data(), p.h0.data(), out.data(), h_n.data());
  check(eigengru::path_count(eigengru::Path::kForwardByUnits) == split_before + 1,
        variant + ": the forward split the units");
  eigengru::TrainingCache<double> cache;
  eigengru::forward_training(p.weights(reset_after), seq, p.x.data(), p.h0.data(), out_t.data(),
                             h_n_t.data(), cache);
  double worst = 0;
  for (std::size_t k = 0; k < out.size(); ++k) worst = std::max(worst, std::abs(out[k] - out_t[k]));
  for (std::size_t k = 0; k < h_n.size(); ++k) worst = std::max(worst, std::abs(h_n[k] - h_n_t[k]));
  check(worst < 1e-12, variant + ": inference split by units equals the training forward");
  // Inside another parallel region OpenMP grants fewer threads than asked: same result, no hang.
  std::vector<double> out_nested(out.size()), h_n_nested(h_n.size());
#pragma omp parallel num_threads(2)
#pragma omp single
  eigengru::forward(p.weights(reset_after), seq, p.x.data(), p.h0.data(), out_nested.data(),
                    h_n_nested.data());
  check(out_nested == out && h_n_nested == h_n,
        variant + ": the split inside a parallel region gives the same result");
  eigengru::set_num_threads(before);
}

}  // namespace

int main() {
  if (!eigengru_test::requested_kernel_set_runs()) return eigengru_test::kSkipped;
  test_units_split(true);
  test_units_split(false);
  test_stack_paths();
  test_gradients(true);
  test_gradients(false);
  test_argument_errors();
  return eigengru_test::finish();
}
