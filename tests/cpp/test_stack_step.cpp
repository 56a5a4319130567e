// StackStep, one inference step of a whole stack: for both formulations, one and two directions,
// two layers, batches of 1 to 5, no initial state (zeros) or a random one, and 1 to 4 threads,
// its outputs and final states equal stack_forward_training()'s over the same single step bit
// for bit, and stack_forward()'s within rounding.
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"
#include "random_model.hpp"

namespace {

using eigengru::Index;
using eigengru_test::check;

template <typename Scalar>
eigengru::Model<Scalar> random_model(bool reset_after, bool bidirectional, unsigned seed) {
  eigengru::StackSpec spec{5, 19, 2, bidirectional};
  spec.reset_after = reset_after;
  return eigengru_test::random_model<Scalar>(spec, seed, 0.6);
}

template <typename Scalar>
void test_equals_one_step_forward(bool reset_after, bool bidirectional, double tolerance) {
  const auto model = random_model<Scalar>(reset_after, bidirectional, 11);
  const auto layers = model.layers();
  const eigengru::StackSpec& spec = model.spec;
  const Index I = spec.input_size, H = spec.hidden_size, D = spec.directions();
  const Index LD = spec.num_layers * D;
  eigengru::StackStep<Scalar> stepper(spec, layers.data());
  std::mt19937 gen(4);
  std::normal_distribution<double> n;
  for (int threads : {1, 2, 3, 4}) {  // 3 and 4: directions side by side on 2 + 1, 2 + 2
    eigengru::set_num_threads(threads);
    for (Index B = 1; B <= 5; ++B)
      for (bool with_h0 : {false, true}) {
        std::vector<Scalar> x(B * I), h0(LD * B * H);
        for (auto& v : x) v = static_cast<Scalar>(n(gen));
        for (auto& v : h0) v = static_cast<Scalar>(0.5 * n(gen));
        const Scalar* h0p = with_h0 ? h0.data() : nullptr;
        std::vector<Scalar> out(B * D * H), h_n(LD * B * H);
        stepper.forward(B, x.data(), h0p, h_n.data(), out.data(), threads);

        std::vector<Scalar> want_out(B * D * H), want_h_n(LD * B * H);
        eigengru::StackCache<Scalar> cache;
        eigengru::stack_forward_training(spec, layers.data(), 1, B, nullptr, x.data(), h0p,
                                         want_out.data(), want_h_n.data(), 0, cache);
        const std::string what = std::string(reset_after ? "reset_after" : "reset_before") +
                                 (bidirectional ? ", bidirectional" : "") + ", batch " +
                                 std::to_string(B) + ", " + std::to_string(threads) + " thread(s)" +
                                 (with_h0 ? ", h0" : ", no h0");
        check(out == want_out && h_n == want_h_n,
              what + ": equals the training forward bit for bit");

        std::vector<Scalar> inference_out(B * D * H), inference_h_n(LD * B * H);
        eigengru::stack_forward(spec, layers.data(), 1, B, nullptr, x.data(), h0p,
                                inference_out.data(), inference_h_n.data());
        const double err = eigengru_test::max_relative_error(out, inference_out);
        check(err < tolerance,
              what + ": equals the inference forward (error " + std::to_string(err) + ")");
      }
  }
}

}  // namespace

int main() {
  if (!eigengru_test::requested_kernel_set_runs()) return eigengru_test::kSkipped;
  for (bool reset_after : {true, false})
    for (bool bidirectional : {false, true}) {
      test_equals_one_step_forward<float>(reset_after, bidirectional, 1e-5);
      test_equals_one_step_forward<double>(reset_after, bidirectional, 1e-12);
    }
  bool refused = false;
  try {
    const eigengru::Model<float> m = random_model<float>(true, false, 1);
    const auto layers = m.layers();
    eigengru::StackSpec other = m.spec;
    other.input_size = 6;  // the first layer's weights are for 5
    eigengru::StackStep<float> wrong(other, layers.data());
  } catch (const std::invalid_argument&) {
    refused = true;
  }
  check(refused, "weights that do not match the spec are refused");
  return eigengru_test::finish();
}
