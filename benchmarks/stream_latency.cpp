// Latency of one streaming step at batch 1 (eigengru::Stream::step), in ns, against the
// sequence forward's cost per step on the same model, float32, one thread; and the bound set by
// the step's two products alone (x W_ihᵀ and h W_hhᵀ with the packed kernel), which at batch 1
// is the time to stream the weights from the cache they live in; and the time to read the
// weights alone, as bytes. With a precision, the same for the model quantized to it (no
// products' bound then). Every figure but the median and p99 of single steps is the median of
// 15 rounds' means, which a busy host moves less than one run's mean.
//
//   stream_latency I H [steps] [float|bfloat16|int8]     prints one JSON object
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "eigengru/eigengru.hpp"
#include "micro_kernel.hpp"
#include "packed_matrix.hpp"

// The products' bound uses the packed kernel itself, compiled with one kernel set's sources and
// flags (CMakeLists.txt builds a program per set).
namespace kernels = eigengru::EIGENGRU_KERNEL_SET;

namespace {

/// Reads n floats (a multiple of 64) with the kernel set's vector loads into four sums.
__attribute__((noinline)) float read_once(const float* p, std::size_t n) {
  using kernels::detail::Vec;
  constexpr std::size_t kLanes = kernels::detail::kLanes<float>, kStride = 4 * kLanes;
  Vec<float> s[4] = {};
  for (std::size_t i = 0; i + kStride <= n; i += kStride)
    for (std::size_t j = 0; j < 4; ++j) s[j] += kernels::detail::load_vector(p + i + j * kLanes);
  const Vec<float> total = (s[0] + s[1]) + (s[2] + s[3]);
  float sum = 0;
  for (std::size_t j = 0; j < kLanes; ++j) sum += total[j];
  return sum;
}

/// ns per step of run(t0, t1), which runs steps [t0, t1): the steps go in kRounds rounds, and
/// the median round counts, so that a burst of another process's work on the core moves the
/// figure less than it moves a single run's mean.
template <typename Run>
double per_step_median_of_rounds(long steps, Run run) {
  constexpr long kRounds = 15;
  std::vector<double> rounds;
  for (long r = 0; r < kRounds; ++r) {
    const long t0 = steps * r / kRounds, t1 = steps * (r + 1) / kRounds;
    const auto start = std::chrono::steady_clock::now();
    run(t0, t1);
    rounds.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        static_cast<double>(t1 - t0));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[kRounds / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: stream_latency I H [steps] [float|bfloat16|int8]\n");
    return 2;
  }
  const long I = std::atol(argv[1]), H = std::atol(argv[2]);
  const long steps = argc > 3 ? std::atol(argv[3]) : 20000;
  const std::string precision_name = argc > 4 ? argv[4] : "float";
  const auto precision = precision_name == "int8"       ? eigengru::Precision::kInt8
                         : precision_name == "bfloat16" ? eigengru::Precision::kBfloat16
                                                        : eigengru::Precision::kFloat;
  eigengru::set_num_threads(1);
  eigengru::StackSpec spec;
  spec.input_size = I;
  spec.hidden_size = H;
  std::mt19937 gen(0);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  std::vector<std::vector<float>> p;
  for (long n : {3 * H * I, 3 * H * H, 3 * H, 3 * H}) {
    p.emplace_back(n);
    for (auto& v : p.back()) v = u(gen);
  }
  const eigengru::LayerWeights<float> w{I,           H,           true,       p[0].data(),
                                        p[1].data(), p[2].data(), p[3].data()};
  std::vector<float> x(steps * I), out(steps * H);
  for (auto& v : x) v = u(gen);

  const bool quantized = precision != eigengru::Precision::kFloat;
  std::vector<eigengru::QuantizedLayer> layers;
  if (quantized) layers.push_back(eigengru::quantize(w, precision));
  eigengru::Stream<float> stream =
      quantized ? eigengru::Stream<float>(spec, layers.data()) : eigengru::Stream<float>(spec, &w);
  using Clock = std::chrono::steady_clock;
  std::vector<double> per_step(steps);
  for (int warm = 0; warm < 1000; ++warm) stream.step(x.data(), out.data());
  stream.reset();
  for (long t = 0; t < steps; ++t) {
    const auto start = Clock::now();
    stream.step(x.data() + t * I, out.data() + t * H);
    per_step[t] = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  }
  std::vector<double> sorted = per_step;
  std::sort(sorted.begin(), sorted.end());
  // The total over a run also counts the clock reads; time a plain loop for the mean.
  const double mean = per_step_median_of_rounds(steps, [&](long t0, long t1) {
    for (long t = t0; t < t1; ++t) stream.step(x.data() + t * I, out.data() + t * H);
  });
  const std::optional<eigengru::QuantizedGRU> q =
      quantized ? std::optional<eigengru::QuantizedGRU>(std::in_place, spec, layers) : std::nullopt;
  const double sequence = per_step_median_of_rounds(steps, [&](long t0, long t1) {
    if (q)
      q->forward(t1 - t0, 1, nullptr, x.data() + t0 * I, nullptr, out.data() + t0 * H, nullptr);
    else
      eigengru::stack_forward(spec, &w, t1 - t0, 1, nullptr, x.data() + t0 * I, nullptr,
                              out.data() + t0 * H, nullptr);
  });
  kernels::PackedMatrix<float> w_ih_t, w_hh_t;
  w_ih_t.pack(p[0].data(), I, 3 * H, 1, I);
  w_hh_t.pack(p[1].data(), H, 3 * H, 1, H);
  std::vector<float> g(3 * H), h(H, 0.1f);
  const double products = quantized ? 0.0 : per_step_median_of_rounds(steps, [&](long t0, long t1) {
    for (long t = t0; t < t1; ++t) {
      w_ih_t.multiply(x.data() + t * I, I, 1, g.data(), 3 * H, false);
      w_hh_t.multiply(h.data(), H, 1, g.data(), 3 * H, true);
      h[t % H] = g[t % (3 * H)];  // a dependency from step to step, as in the recurrence
    }
  });
  // Reading the step's weights (in this precision) once from the cache that holds them, with
  // the widest vector loads and nothing else: no step at batch 1 can take less.
  const long weight_bytes = (I + H) * 3 * H *
                            (precision == eigengru::Precision::kInt8       ? 1
                             : precision == eigengru::Precision::kBfloat16 ? 2
                                                                           : 4);
  std::vector<float> weights(weight_bytes / sizeof(float), 0.5f);
  float sink = 0;
  const double read = per_step_median_of_rounds(steps, [&](long t0, long t1) {
    for (long t = t0; t < t1; ++t) {
      sink += read_once(weights.data(), weights.size());
      __asm__ volatile("" : : : "memory");  // one read per step: not hoisted out of the loop
    }
  });
  if (sink == -1) std::printf("?");
  std::printf(
      "{\"input_size\": %ld, \"hidden_size\": %ld, \"step_mean_ns\": %.1f, "
      "\"step_median_ns\": %.1f, \"step_p99_ns\": %.1f, \"sequence_per_step_ns\": %.1f, "
      "\"products_ns\": %.1f, \"weight_bytes\": %ld, \"precision\": \"%s\", "
      "\"weights_read_ns\": %.1f}\n",
      I, H, mean, sorted[steps / 2], sorted[steps * 99 / 100], sequence, quantized ? 0.0 : products,
      weight_bytes, precision_name.c_str(), read);
  return 0;
}
