// A mutation fuzzer for the .egru reader: valid model files (written here with save_model, of
// several shapes, both scalar sizes, with and without biases, one and two directions, float and
// quantized to bfloat16 and int8, plus any given on the command line) are mutated (bit flips,
// random bytes, header fields set to edge values, truncation, extension, repeated chunks), half of
// them with the checksum made valid again so that the mutation reaches the parser, and each is
// loaded as float and as double. Every load must either succeed or throw std::runtime_error with a
// message that starts with the file's path; anything else (another exception, a crash, a sanitizer
// report, a hang) is a failure, and the input that caused it is kept (fuzz_failure.egru).
//
//   fuzz_model_file [--runs N] [--seed S] [model.egru ...]
//
// The test command runs a short run under every build, the sanitizers' included;
// scripts/fuzz_model_file runs 100,000.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"
#include "random_model.hpp"

namespace {

using Bytes = std::vector<unsigned char>;

Bytes read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

/// Valid files of several kinds, written by save_model.
std::vector<Bytes> seed_files(const std::string& scratch) {
  std::vector<Bytes> seeds;
  unsigned seed = 1;
  for (bool bias : {true, false})
    for (bool bidirectional : {false, true})
      for (eigengru::Index layers : {1, 2}) {
        eigengru::StackSpec spec{3, 4, layers, bidirectional};
        spec.reset_after = seed % 2 == 0;
        spec.reverse = !bidirectional && seed % 3 == 0;
        spec.dropout = layers > 1 ? 0.25 : 0.0;
        if (seed % 3 == 1) {  // a per-sequence dropout block after the header
          spec.input_dropout = 0.25;
          spec.recurrent_dropout = seed % 2 == 0 ? 0.0 : 0.5;
        }
        if (seed % 4 == 1) {  // a functions block after the header
          spec.nonlinearities.gate = {eigengru::Activation::kHardSigmoid, 0.2, 0.5};
          spec.nonlinearities.candidate = {eigengru::Activation::kRelu};
          spec.nonlinearities.clip = 3.0;
        }
        auto write = [&](auto model) {
          model.bias = bias;
          if (!bias) {  // keep weight_ih and weight_hh of each layer-direction
            decltype(model.parameters) weights;
            for (std::size_t k = 0; k < model.parameters.size(); ++k)
              if (k % 4 < 2) weights.push_back(model.parameters[k]);
            model.parameters = weights;
          }
          eigengru::save_model(model, scratch);
          seeds.push_back(read_file(scratch));
        };
        write(eigengru_test::random_model<float>(spec, seed, 0.5));
        write(eigengru_test::random_model<double>(spec, seed + 100, 0.5));
        // quantized: version 2, with each precision's weight blocks
        const auto precision =
            seed % 2 == 0 ? eigengru::Precision::kInt8 : eigengru::Precision::kBfloat16;
        auto source = eigengru_test::random_model<float>(spec, seed + 200, 0.5);
        eigengru::Model<float> quantized;
        quantized.spec = spec;
        quantized.bias = bias;
        quantized.precision = precision;
        for (auto w : source.layers()) {
          if (!bias) w.bias_ih = w.bias_hh = nullptr;
          quantized.quantized.push_back(eigengru::quantize(w, precision));
        }
        eigengru::save_model(quantized, scratch);
        seeds.push_back(read_file(scratch));
        ++seed;
      }
  return seeds;
}

std::uint32_t crc32(const unsigned char* data, std::size_t size) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) {
    c ^= data[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

/// One to four random mutations of `bytes`; then, half of the time, a valid checksum.
Bytes mutate(Bytes bytes, std::mt19937_64& gen) {
  auto below = [&](std::size_t n) { return n == 0 ? std::size_t{0} : gen() % n; };
  static const std::uint32_t kEdges[] = {
      0,          1,          2,         3,        4,
      7,          8,          15,        16,       255,
      1024,       65535,      65536,     1u << 20, (1u << 20) + 1,
      0x7FFFFFFF, 0x80000000, 0xFFFFFFFF};
  const int mutations = 1 + static_cast<int>(below(4));
  for (int m = 0; m < mutations; ++m) {
    switch (below(6)) {
      case 0:  // flip a bit
        if (!bytes.empty()) bytes[below(bytes.size())] ^= 1u << below(8);
        break;
      case 1:  // a random byte
        if (!bytes.empty()) bytes[below(bytes.size())] = static_cast<unsigned char>(gen());
        break;
      case 2: {  // a header field (version, scalar size, precision, sizes, flags, dropout) at an
                 // edge
        const std::size_t at = 8 + 4 * below(8);
        const std::uint32_t value = kEdges[below(std::size(kEdges))];
        if (at + 4 <= bytes.size()) std::memcpy(bytes.data() + at, &value, 4);
        break;
      }
      case 3:  // truncate
        bytes.resize(below(bytes.size() + 1));
        break;
      case 4:  // extend
        for (std::size_t n = 1 + below(64); n > 0; --n)
          bytes.push_back(static_cast<unsigned char>(gen()));
        break;
      default: {  // repeat a chunk in place of another
        if (bytes.size() < 2) break;
        const std::size_t from = below(bytes.size()), to = below(bytes.size());
        const std::size_t n = 1 + below(std::min<std::size_t>(32, bytes.size() - from));
        Bytes chunk(bytes.begin() + from, bytes.begin() + from + n);
        bytes.insert(bytes.begin() + to, chunk.begin(), chunk.end());
        break;
      }
    }
  }
  if (gen() % 2 == 0 && bytes.size() >= 4) {
    const std::uint32_t crc = crc32(bytes.data(), bytes.size() - 4);
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  }
  return bytes;
}

/// "" when loading `path` as Scalar succeeds or is refused properly; else what went wrong.
template <typename Scalar>
std::string load_problem(const std::string& path, int& loaded) {
  try {
    const auto model = eigengru::load_model<Scalar>(path);
    const auto count = static_cast<std::size_t>(model.spec.num_layers * model.spec.directions());
    if (model.precision != eigengru::Precision::kFloat) {
      if constexpr (std::is_same_v<Scalar, float>) {
        if (model.quantized.size() != count || !model.parameters.empty())
          return "a loaded quantized model's layers do not match its spec";
        const eigengru::QuantizedGRU q(model.spec, model.quantized);  // checks every layer
      } else {
        return "a quantized model loaded as Model<double>";
      }
    } else if (model.layers().size() != count) {  // views over what was read
      return "a loaded model's layers do not match its spec";
    }
    if (!model.spec.nonlinearities.valid()) return "a loaded model's functions are not valid";
    ++loaded;
    return "";
  } catch (const std::runtime_error& error) {
    if (std::string(error.what()).rfind(path + ": ", 0) != 0)
      return std::string("a refusal that does not name the file: ") + error.what();
    return "";
  } catch (const std::exception& error) {
    return std::string("an exception other than std::runtime_error: ") + error.what();
  }
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 2000;
  unsigned long long seed = 5489;
  std::vector<std::string> given;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--runs" && a + 1 < argc)
      runs = std::stol(argv[++a]);
    else if (arg == "--seed" && a + 1 < argc)
      seed = std::stoull(argv[++a]);
    else
      given.push_back(arg);
  }
  const std::string scratch = "fuzz_model_file.egru";
  std::vector<Bytes> seeds = seed_files(scratch);
  for (const std::string& path : given) {
    seeds.push_back(read_file(path));
    eigengru_test::check(!seeds.back().empty(), path + ": cannot be read");
  }
  for (const Bytes& bytes : seeds) {  // the seeds themselves load
    write_file(scratch, bytes);
    int loaded = 0;
    const std::string problem = load_problem<float>(scratch, loaded);
    eigengru_test::check(problem.empty() && loaded == 1, "a valid file loads: " + problem);
  }
  std::mt19937_64 gen(seed);
  int loaded = 0;
  for (long run = 0; run < runs && eigengru_test::failures == 0; ++run) {
    const Bytes bytes = mutate(seeds[gen() % seeds.size()], gen);
    write_file(scratch, bytes);
    for (const std::string& problem :
         {load_problem<float>(scratch, loaded), load_problem<double>(scratch, loaded)}) {
      if (problem.empty()) continue;
      write_file("fuzz_failure.egru", bytes);
      eigengru_test::check(false, "run " + std::to_string(run) + ": " + problem +
                                      " (input kept in fuzz_failure.egru)");
      break;
    }
  }
  std::remove(scratch.c_str());
  std::printf("%ld mutated files, %d loads accepted, the rest refused\n", runs, loaded);
  return eigengru_test::finish();
}
