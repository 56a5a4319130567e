// The C++ core used as a C++ application would: raw buffers, no Python.
// Checks training forward against inference, every gradient against central differences (double),
// the one-backward-per-forward rule, and argument errors. Exits non-zero on the first failure.
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "eigengru/eigengru.hpp"

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what.c_str());
    ++failures;
  }
}

struct Problem {
  eigengru::Index T = 5, B = 3, I = 4, H = 7;
  std::vector<double> w_ih, w_hh, b_ih, b_hh, x, h0, g_out, g_hn;

  explicit Problem(unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(-0.7, 0.7);
    auto fill = [&](std::vector<double>& v, eigengru::Index n) {
      v.resize(n);
      for (auto& e : v) e = u(gen);
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
    eigengru::forward(weights(reset_after), eigengru::Sequence{T, B}, x.data(), h0.data(), out.data(), h_n.data());
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
  eigengru::forward(p.weights(reset_after), eigengru::Sequence{p.T, p.B}, p.x.data(), p.h0.data(), out.data(),
                    h_n.data());
  eigengru::TrainingCache<double> cache;
  eigengru::forward_training(p.weights(reset_after), eigengru::Sequence{p.T, p.B}, p.x.data(), p.h0.data(),
                             out_t.data(), h_n_t.data(), cache);
  check(out == out_t && h_n == h_n_t, variant + ": training forward equals inference forward");

  std::vector<double> dx(p.x.size()), dh0(p.h0.size()), gw_ih(p.w_ih.size()),
      gw_hh(p.w_hh.size()), gb_ih(p.b_ih.size()), gb_hh(p.b_hh.size());
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
    eigengru::forward<double>(w, eigengru::Sequence{p.T, p.B}, p.x.data(), nullptr, out.data(), h_n.data());
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("hidden_size") != std::string::npos;
  }
  check(threw, "hidden_size = 0 throws std::invalid_argument naming it");
}

}  // namespace

int main() {
  test_gradients(true);
  test_gradients(false);
  test_argument_errors();
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
