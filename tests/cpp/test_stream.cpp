// The streaming API and the model file, from C++ alone:
//   - Stream::step over a sequence gives stack_forward's outputs (both formulations, 2 layers,
//     a small batch), reset() starts over, a bidirectional spec is refused;
//   - save_model/load_model round-trip; truncated, foreign, damaged and future files are refused
//     with a message naming the problem;
//   - quantized stacks: Stream gives QuantizedGRU::forward's outputs bit for bit, near the float
//     model's; their files round-trip, and refuse to load as Model<double>;
//   - given a fixture folder written by Python (tests/cpp/make_fixture.py), the models saved by
//     eigengru.GRU.save (standard functions and others) and QuantizedGRU.save give, in C++, the
//     outputs Python computed.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"
#include "random_model.hpp"

namespace {

using eigengru_test::check;
using eigengru_test::max_relative_error;

using eigengru::Index;

template <typename Scalar>
eigengru::Model<Scalar> random_model(bool reset_after, unsigned seed, Index hidden_size = 19) {
  eigengru::StackSpec spec{5, hidden_size, 2};
  spec.reset_after = reset_after;
  return eigengru_test::random_model<Scalar>(spec, seed, 0.5);
}

template <typename Scalar>
void test_stream_equals_sequence(bool reset_after, double tolerance, Index B = 3,
                                 Index hidden_size = 19) {
  const auto model = random_model<Scalar>(reset_after, 7, hidden_size);
  const auto layers = model.layers();
  // An odd T: a stream that reset() did not restart would begin its rerun in the other order.
  const Index T = 41, I = model.spec.input_size, H = model.spec.hidden_size;
  std::mt19937 gen(3);
  std::normal_distribution<double> n;
  std::vector<Scalar> x(T * B * I), out(T * B * H), h_n(2 * B * H), streamed(T * B * H);
  for (auto& v : x) v = static_cast<Scalar>(n(gen));
  eigengru::stack_forward(model.spec, layers.data(), T, B, nullptr, x.data(), nullptr, out.data(),
                          h_n.data());
  eigengru::Stream<Scalar> stream(model.spec, layers.data(), B);
  const std::string variant =
      std::string(reset_after ? "reset_after" : "reset_before") + ", batch " + std::to_string(B);
  std::vector<Scalar> first_pass;
  for (int pass = 0; pass < 2; ++pass) {  // the second pass checks reset()
    stream.reset();
    for (Index t = 0; t < T; ++t) stream.step(x.data() + t * B * I, streamed.data() + t * B * H);
    const double err = max_relative_error(streamed, out);
    check(err < tolerance,
          variant + ": stream equals sequence forward (error " + std::to_string(err) + ")");
    if (pass == 0) first_pass = streamed;
  }
  check(streamed == first_pass, variant + ": a rerun after reset() is bitwise the same");
}

void test_both_ways_refused() {
  for (const bool reverse : {false, true}) {
    auto model = random_model<float>(true, 1);
    model.spec.bidirectional = !reverse;
    model.spec.reverse = reverse;
    bool threw = false;
    try {
      const auto layers = model.layers();
      eigengru::Stream<float> stream(model.spec, layers.data());
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    check(threw, reverse ? "a reverse stream is refused" : "a bidirectional stream is refused");
  }
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename Scalar = float>
bool load_fails_with(const std::string& path, const std::string& message) {
  try {
    eigengru::load_model<Scalar>(path);
  } catch (const std::runtime_error& e) {
    const bool ok = std::string(e.what()).find(message) != std::string::npos;
    if (!ok) std::printf("  got: %s\n", e.what());
    return ok;
  }
  return false;
}

void test_model_file(const std::string& folder) {
  const auto model = random_model<float>(false, 11);
  const std::string path = folder + "/roundtrip.egru";
  eigengru::save_model(model, path);
  const auto back = eigengru::load_model<float>(path);
  check(back.parameters == model.parameters && back.spec.hidden_size == 19 &&
            !back.spec.reset_after && back.names.front() == "weight_ih_l0" &&
            back.names.back() == "bias_hh_l1",
        "save_model then load_model gives the same model");
  const auto good = read_bytes(path);

  auto reversed = model;
  reversed.spec.reverse = true;
  eigengru::save_model(reversed, path + ".reverse");
  check(eigengru::load_model<float>(path + ".reverse").spec.reverse, "reverse is kept in a file");

  auto damaged = good;
  damaged[damaged.size() / 2] ^= 0x10;
  write_bytes(path + ".damaged", damaged);
  check(load_fails_with(path + ".damaged", "checksum mismatch"), "a flipped bit is caught");

  write_bytes(path + ".truncated", std::vector<char>(good.begin(), good.begin() + 200));
  check(load_fails_with(path + ".truncated", "truncated"), "a truncated file is caught");

  auto foreign = good;
  foreign[0] = 'X';
  write_bytes(path + ".foreign", foreign);
  check(load_fails_with(path + ".foreign", "not an eigengru model file"), "a foreign file");

  auto future = good;
  future[8] = 9;
  write_bytes(path + ".future", future);
  check(load_fails_with(path + ".future", "version 9 is not supported"), "a newer version");

  check(load_fails_with(folder + "/missing.egru", "cannot open"), "a missing file");
}

std::vector<eigengru::QuantizedLayer> quantized_layers(const eigengru::Model<float>& model,
                                                       eigengru::Precision precision) {
  std::vector<eigengru::QuantizedLayer> layers;
  for (const auto& w : model.layers()) layers.push_back(eigengru::quantize(w, precision));
  return layers;
}

/// A quantized stack's Stream against its forward (bit for bit: rows are independent) and the
/// float model (within the quantization's error).
/// With 48 units (whole panels), one row and the reset after the product, both run the fused
/// quantized step wherever the kernel set and the CPU have the dot-product instruction.
void test_quantized_stream(eigengru::Precision precision, bool reset_after, Index B,
                           Index hidden_size = 37) {
  const auto model = random_model<float>(reset_after, 11, hidden_size);
  const auto layers = quantized_layers(model, precision);
  const eigengru::QuantizedGRU q(model.spec, layers);
  const Index T = 25, I = model.spec.input_size, H = model.spec.hidden_size;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(T * B * I), out(T * B * H), streamed(T * B * H), exact(T * B * H);
  for (auto& v : x) v = normal(gen);
  const auto fused_before = eigengru::path_count(eigengru::Path::kQuantizedRowStep);
  q.forward(T, B, nullptr, x.data(), nullptr, out.data(), nullptr);
  eigengru::Stream<float> stream(model.spec, layers.data(), B);
  for (Index t = 0; t < T; ++t) stream.step(x.data() + t * B * I, streamed.data() + t * B * H);
  const std::string what = std::string(eigengru::precision_name(precision)) +
                           (reset_after ? ", reset after" : ", reset before") + ", batch " +
                           std::to_string(B) + ", " + std::to_string(H) + " units";
  // The kernel sets with dot-product kernels: AVX-512 with VNNI or BF16, AVX2 for both.
  const bool int8 = precision == eigengru::Precision::kInt8;
  const std::string set = eigengru::isa();
  const bool avx512 = set == "avx512" || (set == "native" && __builtin_cpu_supports("avx512f"));
  const bool avx2 = set == "avx2" || (set == "native" && !avx512 && __builtin_cpu_supports("avx2"));
  const bool instruction =
      int8 ? __builtin_cpu_supports("avx512vnni") : __builtin_cpu_supports("avx512bf16");
  const bool kernel = avx512 ? instruction : avx2;
  const bool fused = reset_after && B == 1 && H % 16 == 0 && kernel;
  // Per layer: once in the forward and once when the stream is made.
  const auto fused_calls = eigengru::path_count(eigengru::Path::kQuantizedRowStep) - fused_before;
  check(fused_calls == (fused ? 2u * model.spec.num_layers : 0u),
        "the fused quantized step runs exactly where it fits: " + what + " (" +
            std::to_string(fused_calls) + " calls)");
  check(streamed == out, "the quantized stream gives the quantized forward's outputs: " + what);
  const auto float_layers = model.layers();
  eigengru::stack_forward(model.spec, float_layers.data(), T, B, nullptr, x.data(), nullptr,
                          exact.data(), nullptr);
  const double err = max_relative_error(out, exact);
  check(err < 5e-2 && err > 0,
        "the quantized forward is near the float one: " + what + " (" + std::to_string(err) + ")");
}

void test_quantized_model_file(const std::string& folder) {
  for (auto precision : {eigengru::Precision::kBfloat16, eigengru::Precision::kInt8}) {
    auto model = random_model<float>(false, 12);
    model.spec.bidirectional = true;
    model = eigengru_test::random_model<float>(model.spec, 12, 0.5);
    eigengru::Model<float> q;
    q.spec = model.spec;
    q.precision = precision;
    q.quantized = quantized_layers(model, precision);
    const std::string path = folder + "/quantized_" + eigengru::precision_name(precision) + ".egru";
    eigengru::save_model(q, path);
    const auto back = eigengru::load_model<float>(path);
    bool same = back.precision == precision && back.quantized.size() == q.quantized.size() &&
                back.parameters.empty() && back.spec.bidirectional;
    for (std::size_t k = 0; same && k < q.quantized.size(); ++k) {
      const auto &a = q.quantized[k], &b = back.quantized[k];
      same = a.weight_ih.int8 == b.weight_ih.int8 && a.weight_ih.scales == b.weight_ih.scales &&
             a.weight_hh.bfloat16 == b.weight_hh.bfloat16 && a.bias_hh == b.bias_hh &&
             a.weight_hh.rows == b.weight_hh.rows && b.weight_ih.valid();
    }
    check(same, std::string("a ") + eigengru::precision_name(precision) +
                    " model round-trips through its file");
    check(load_fails_with<double>(path, "load it as Model<float>"),
          "a quantized model is refused as Model<double>");
    bool threw = false;
    try {
      (void)back.layers();
    } catch (const std::logic_error&) {
      threw = true;
    }
    check(threw, "a quantized model has no float layer views");
  }
}

/// A fixture's input x.f32 (T, B, I) and the output Python computed (T, B, H), B = 2.
struct FixtureRun {
  Index T, B = 2, I, H;
  std::vector<float> x, expected, out, streamed;

  FixtureRun(const std::string& folder, const std::string& out_file,
             const eigengru::StackSpec& spec)
      : I(spec.input_size), H(spec.hidden_size) {
    const auto raw_x = read_bytes(folder + "/x.f32");
    const auto raw_out = read_bytes(folder + "/" + out_file);
    T = static_cast<Index>(raw_x.size() / sizeof(float)) / (B * I);
    x.resize(T * B * I);
    expected.resize(T * B * H);
    out.resize(T * B * H);
    streamed.resize(T * B * H);
    std::memcpy(x.data(), raw_x.data(), raw_x.size());
    std::memcpy(expected.data(), raw_out.data(), raw_out.size());
  }

  /// Runs `stream` over x into `streamed`.
  void step_through(eigengru::Stream<float>& stream) {
    for (Index t = 0; t < T; ++t) stream.step(x.data() + t * B * I, streamed.data() + t * B * H);
  }
};

/// model<suffix>.egru, x.f32 (T, B, I) and out<suffix>.f32 (T, B, H) written by
/// tests/cpp/make_fixture.py.
void test_python_fixture(const std::string& folder, const std::string& suffix) {
  const auto model = eigengru::load_model<float>(folder + "/model" + suffix + ".egru");
  check(model.spec.nonlinearities.standard() == suffix.empty(),
        "the Python-saved model" + suffix + " has its functions");
  FixtureRun run(folder, "out" + suffix + ".f32", model.spec);
  const auto layers = model.layers();
  eigengru::stack_forward(model.spec, layers.data(), run.T, run.B, nullptr, run.x.data(), nullptr,
                          run.out.data(), nullptr);
  check(max_relative_error(run.out, run.expected) < 1e-5,
        "the Python-saved model" + suffix + " gives Python's output");
  eigengru::Stream<float> stream(model.spec, layers.data(), run.B);
  run.step_through(stream);
  check(max_relative_error(run.streamed, run.expected) < 1e-5,
        "streaming the Python-saved model" + suffix + " too");
}

/// model_<precision>.egru and out_<precision>.f32, saved by eigengru.QuantizedGRU.save: run by
/// QuantizedGRU and Stream. Within 1e-4 of Python's output rather than equal, since this test
/// runs under every kernel set while Python computed under the one it chose.
void test_python_quantized_fixture(const std::string& folder, const std::string& precision) {
  const auto model = eigengru::load_model<float>(folder + "/model_" + precision + ".egru");
  check(eigengru::precision_name(model.precision) == precision,
        "the Python-saved model is " + precision);
  FixtureRun run(folder, "out_" + precision + ".f32", model.spec);
  const eigengru::QuantizedGRU q(model.spec, model.quantized);
  q.forward(run.T, run.B, nullptr, run.x.data(), nullptr, run.out.data(), nullptr);
  check(max_relative_error(run.out, run.expected) < 1e-4,
        "the Python-saved " + precision + " model gives Python's output");
  eigengru::Stream<float> stream(model.spec, model.quantized.data(), run.B);
  run.step_through(stream);
  check(run.streamed == run.out,
        "streaming the Python-saved " + precision + " model gives its forward");
}

}  // namespace

int main(int argc, char** argv) {
  if (!eigengru_test::requested_kernel_set_runs()) return eigengru_test::kSkipped;
  test_stream_equals_sequence<float>(true, 1e-5);
  test_stream_equals_sequence<float>(false, 1e-5);
  test_stream_equals_sequence<double>(true, 1e-12);
  test_stream_equals_sequence<double>(false, 1e-12);
  test_stream_equals_sequence<float>(true, 1e-5, 1);  // one row: the order of its sums alternates
  test_stream_equals_sequence<float>(false, 1e-5, 1);
  // One row, a multiple of the vector width: the fused step (float: 3 vectors of units in one
  // group; double: 6 in two)
  test_stream_equals_sequence<float>(true, 1e-5, 1, 48);
  test_stream_equals_sequence<double>(true, 1e-12, 1, 48);
  test_both_ways_refused();
  for (auto precision : {eigengru::Precision::kBfloat16, eigengru::Precision::kInt8})
    for (bool reset_after : {true, false})
      for (Index B : {1, 4})
        for (Index H : {37, 48}) test_quantized_stream(precision, reset_after, B, H);
  test_model_file(argc > 1 ? argv[1] : ".");
  test_quantized_model_file(argc > 1 ? argv[1] : ".");
  if (argc > 2) {
    for (const char* suffix : {"", "_functions"}) test_python_fixture(argv[2], suffix);
    for (const char* precision : {"bfloat16", "int8"})
      test_python_quantized_fixture(argv[2], precision);
  }
  return eigengru_test::finish();
}
