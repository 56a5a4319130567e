// Loads a model saved from Python (eigengru.GRU.save("model.egru")) and runs it over a stream:
// a noisy sine wave fed one sample per step, as an audio or sensor loop would, printing the
// per-step latency.
//
//   stream_sine model.egru [steps]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <vector>

#include <eigengru/eigengru.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s model.egru [steps]\n", argv[0]);
    return 2;
  }
  const long steps = argc > 2 ? std::atol(argv[2]) : 48000;
  try {
    const eigengru::Model<float> model = eigengru::load_model<float>(argv[1]);
    const auto layers = model.layers();
    eigengru::Stream<float> stream(model.spec, layers.data());  // all allocation happens here
    const long I = model.spec.input_size, H = model.spec.hidden_size;
    std::printf("%s: %ld input(s), %ld hidden, %ld layer(s), %s; kernel set %s\n", argv[1], I, H,
                static_cast<long>(model.spec.num_layers),
                model.spec.reset_after ? "reset_after" : "reset before the product",
                eigengru::isa().c_str());

    std::mt19937 gen(0);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    std::vector<float> x(I), out(H);
    std::vector<double> latency_ns(steps);
    double checksum = 0;
    for (long t = 0; t < steps; ++t) {
      const float sample = std::sin(2.0f * 3.14159265f * 440.0f * t / 48000.0f) + noise(gen);
      std::fill(x.begin(), x.end(), sample);  // the same sample on every input channel
      const auto start = std::chrono::steady_clock::now();
      stream.step(x.data(), out.data());
      latency_ns[t] =
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
              .count();
      checksum += out[0];
    }
    std::sort(latency_ns.begin(), latency_ns.end());
    std::printf(
        "%ld steps: median %.0f ns, p99 %.0f ns, max %.0f ns per step; mean of out[0] "
        "%.5f\n",
        steps, latency_ns[steps / 2], latency_ns[steps * 99 / 100], latency_ns.back(),
        checksum / steps);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "stream_sine: %s\n", error.what());
    return 1;
  }
  return 0;
}
