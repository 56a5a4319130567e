// set_num_threads may be called from any thread at any time: a stack's backward that another
// thread keeps switching between 1 and 2 threads still gives the gradients of a run at a fixed
// count (within rounding). A bidirectional layer at batch 1 runs its directions side by side at
// 2 threads and one after the other at 1, with different buffers for dx: a call that read the
// count twice, once for each decision, would let both directions write the same buffer at once.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"
#include "random_model.hpp"

namespace {

using eigengru::Index;
using eigengru_test::check;

struct Gradients {
  std::vector<double> dx, dh0;
  std::vector<std::vector<double>> parameters;
};

/// One training forward and backward of `model` at whatever thread count is set meanwhile.
Gradients train_once(const eigengru::Model<double>& model, Index T, Index B,
                     const std::vector<double>& x, const std::vector<double>& grad_out) {
  const eigengru::StackSpec& spec = model.spec;
  const Index H = spec.hidden_size, D = spec.directions(), LD = spec.num_layers * D;
  const auto layers = model.layers();
  std::vector<double> out(T * B * D * H), h_n(LD * B * H);
  eigengru::StackCache<double> cache;
  eigengru::stack_forward_training(spec, layers.data(), T, B, nullptr, x.data(), nullptr,
                                   out.data(), h_n.data(), 0, cache);
  Gradients g;
  g.dx.resize(x.size());
  g.dh0.resize(h_n.size());
  for (const auto& p : model.parameters) g.parameters.emplace_back(p.size(), 0.0);
  std::vector<eigengru::LayerGradients<double>> grads;
  for (Index k = 0; k < LD; ++k)
    grads.push_back({g.parameters[4 * k].data(), g.parameters[4 * k + 1].data(),
                     g.parameters[4 * k + 2].data(), g.parameters[4 * k + 3].data()});
  eigengru::stack_backward(cache, grad_out.data(), nullptr, g.dx.data(), g.dh0.data(),
                           grads.data());
  return g;
}

double max_error(const Gradients& a, const Gradients& b) {
  double err = std::max(eigengru_test::max_relative_error(a.dx, b.dx),
                        eigengru_test::max_relative_error(a.dh0, b.dh0));
  for (std::size_t k = 0; k < a.parameters.size(); ++k)
    err = std::max(err, eigengru_test::max_relative_error(a.parameters[k], b.parameters[k]));
  return err;
}

}  // namespace

int main() {
  if (!eigengru_test::requested_kernel_set_runs()) return eigengru_test::kSkipped;
  const eigengru::StackSpec spec{3, 8, 1, /*bidirectional=*/true};  // small: many runs
  const auto model = eigengru_test::random_model<double>(spec, 5, 0.5);
  const Index T = 3, B = 1;
  std::vector<double> x, grad_out;
  std::mt19937 gen(9);
  eigengru_test::fill_uniform(x, T * B * spec.input_size, gen, 1.0);
  eigengru_test::fill_uniform(grad_out, T * B * 2 * spec.hidden_size, gen, 1.0);

  eigengru::set_num_threads(1);
  const Gradients one = train_once(model, T, B, x, grad_out);
  eigengru::set_num_threads(2);
  const Gradients two = train_once(model, T, B, x, grad_out);
  check(max_error(one, two) < 1e-12, "1 and 2 threads agree");

  std::atomic<bool> stop{false};
  std::thread switcher([&] {
    while (!stop.load(std::memory_order_relaxed)) {  // as fast as it can
      eigengru::set_num_threads(1);
      eigengru::set_num_threads(2);
    }
  });
  constexpr int kRuns = 20000;
  int wrong = 0;
  double worst = 0;
  for (int run = 0; run < kRuns; ++run) {
    const double err = max_error(train_once(model, T, B, x, grad_out), one);
    worst = std::max(worst, err);
    wrong += err > 1e-12;
  }
  stop = true;
  switcher.join();
  check(wrong == 0, std::to_string(wrong) + " of " + std::to_string(kRuns) +
                        " runs with the thread count switching "
                        "meanwhile gave other gradients (worst relative error " +
                        std::to_string(worst) + ")");
  return eigengru_test::finish();
}
