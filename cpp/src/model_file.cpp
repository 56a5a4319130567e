#include "eigengru/model_file.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <type_traits>

namespace eigengru {
namespace {

constexpr char kMagic[8] = {'E', 'I', 'G', 'E', 'N', 'G', 'R', 'U'};
constexpr std::uint32_t kVersion = 1;           // float models
constexpr std::uint32_t kQuantizedVersion = 2;  // quantized ones
constexpr std::uint32_t kFunctionsFlag = 32;
constexpr std::uint32_t kSequenceDropoutFlag = 64;
constexpr std::uint32_t kMaxSize = 1u << 20;  // refuses absurd sizes from a damaged header

std::uint32_t crc32(const unsigned char* data, std::size_t size) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/// Sequential little-endian reads with bounds checks.
class Reader {
 public:
  Reader(const std::vector<unsigned char>& bytes, const std::string& path)
      : bytes_(bytes), path_(path) {}
  template <typename T>
  T read() {
    T value;
    need(sizeof(T));
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  const unsigned char* take(std::size_t n) {
    need(n);
    const unsigned char* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }
  std::size_t at() const { return at_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path_ + ": " + what);
  }

 private:
  void need(std::size_t n) const {
    if (at_ + n > bytes_.size()) fail("truncated (the file ends early)");
  }
  const std::vector<unsigned char>& bytes_;
  const std::string& path_;
  std::size_t at_ = 0;
};

/// A weight matrix (rows, cols) of a quantized model, as stored.
QuantizedMatrix read_matrix(Reader& in, Precision precision, Index rows, Index cols,
                            const std::string& name) {
  QuantizedMatrix m;
  m.precision = precision;
  m.rows = rows;
  m.cols = cols;
  const auto count = static_cast<std::size_t>(rows * cols);
  // Each block is taken (bounds-checked) before its vector is sized, so that a damaged header
  // cannot ask for a huge allocation.
  if (precision == Precision::kBfloat16) {
    const unsigned char* raw = in.take(count * 2);
    m.bfloat16.resize(count);
    std::memcpy(m.bfloat16.data(), raw, count * 2);
  } else {
    const unsigned char* scales = in.take(static_cast<std::size_t>(rows) * 4);
    m.scales.resize(static_cast<std::size_t>(rows));
    std::memcpy(m.scales.data(), scales, m.scales.size() * 4);
    const unsigned char* values = in.take(count);
    m.int8.resize(count);
    std::memcpy(m.int8.data(), values, count);
  }
  if (!m.valid())
    in.fail(name +
            ": an int8 value of -128, a scale that is negative or not finite, or more "
            "int8 columns than the int32 sums allow");
  return m;
}

template <typename T>
std::vector<T> read_values(Reader& in, std::size_t count, std::uint32_t scalar_size) {
  const unsigned char* raw = in.take(count * scalar_size);
  std::vector<T> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (scalar_size == 4) {
      float v;
      std::memcpy(&v, raw + i * 4, 4);
      values[i] = static_cast<T>(v);
    } else {
      double v;
      std::memcpy(&v, raw + i * 8, 8);
      values[i] = static_cast<T>(v);
    }
  }
  return values;
}

}  // namespace

template <typename Scalar>
std::vector<LayerWeights<Scalar>> Model<Scalar>::layers() const {
  if (precision != Precision::kFloat)
    throw std::logic_error("Model::layers: a quantized model's layers are in `quantized`");
  std::vector<LayerWeights<Scalar>> views;
  const std::size_t per = bias ? 4 : 2;
  for (std::size_t k = 0; k * per < parameters.size(); ++k) {
    LayerWeights<Scalar> w;
    const Index layer = static_cast<Index>(k) / spec.directions();
    w.input_size = spec.layer_input_size(layer);
    w.hidden_size = spec.hidden_size;
    w.reset_after = spec.reset_after;
    w.nonlinearities = spec.nonlinearities;
    w.weight_ih = parameters[k * per].data();
    w.weight_hh = parameters[k * per + 1].data();
    if (bias) {
      w.bias_ih = parameters[k * per + 2].data();
      w.bias_hh = parameters[k * per + 3].data();
    }
    views.push_back(w);
  }
  return views;
}

template <typename Scalar>
Model<Scalar> load_model(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error(path + ": cannot open the file");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(file)),
                                         std::istreambuf_iterator<char>());
  Reader in(bytes, path);
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    in.fail("not an eigengru model file (no EIGENGRU signature)");
  in.take(sizeof(kMagic));
  const auto version = in.read<std::uint32_t>();
  if (version != kVersion && version != kQuantizedVersion)
    in.fail("model file version " + std::to_string(version) +
            " is not supported (this eigengru reads versions 1 and 2)");
  const auto scalar_size = in.read<std::uint32_t>();
  if (scalar_size != 4 && scalar_size != 8)
    in.fail("unknown scalar size " + std::to_string(scalar_size) + " (expected 4 or 8)");
  Precision precision = Precision::kFloat;
  if (version == kQuantizedVersion) {
    const auto stored = in.read<std::uint32_t>();
    if (stored != 1 && stored != 2)
      in.fail("unknown precision " + std::to_string(stored) + " (expected 1 or 2)");
    if (scalar_size != 4)
      in.fail("a quantized model with scalar size " + std::to_string(scalar_size) +
              " (expected 4)");
    precision = static_cast<Precision>(stored);
    if constexpr (!std::is_same_v<Scalar, float>)
      in.fail(std::string("a ") + precision_name(precision) +
              " model runs in float: load it as Model<float>");
  }
  const auto input_size = in.read<std::uint32_t>(), hidden_size = in.read<std::uint32_t>(),
             num_layers = in.read<std::uint32_t>(), flags = in.read<std::uint32_t>();
  const auto dropout = in.read<double>();
  if (input_size < 1 || hidden_size < 1 || num_layers < 1 || input_size > kMaxSize ||
      hidden_size > kMaxSize || num_layers > 1024 || flags > 127 || (flags & 18) == 18)
    in.fail("implausible header (sizes " + std::to_string(input_size) + ", " +
            std::to_string(hidden_size) + ", " + std::to_string(num_layers) + ")");
  if (!(dropout >= 0.0 && dropout < 1.0))
    in.fail("implausible header (dropout " + std::to_string(dropout) + ", expected [0, 1))");
  Nonlinearities functions;
  double input_dropout = 0.0, recurrent_dropout = 0.0;
  if (flags & kSequenceDropoutFlag) {
    input_dropout = in.read<double>();
    recurrent_dropout = in.read<double>();
    for (double p : {input_dropout, recurrent_dropout})
      if (!(p >= 0.0 && p < 1.0))
        in.fail("implausible per-sequence dropout " + std::to_string(p) + ", expected [0, 1)");
    if (input_dropout == 0.0 && recurrent_dropout == 0.0)
      in.fail("a per-sequence dropout block with no dropout in it");
  }
  if (flags & kFunctionsFlag) {
    const auto gate = in.read<std::int32_t>(), candidate = in.read<std::int32_t>();
    const double values[5] = {in.read<double>(), in.read<double>(), in.read<double>(),
                              in.read<double>(), in.read<double>()};
    auto kind = [&](std::int32_t k) {
      if (k < 0 || k >= Activation::kKindCount)
        in.fail("unknown activation kind " + std::to_string(k));
      return static_cast<Activation::Kind>(k);
    };
    functions = {
        {kind(gate), values[0], values[1]}, {kind(candidate), values[2], values[3]}, values[4]};
    if (!functions.valid() || functions.standard())
      in.fail(
          "implausible functions (parameters where a kind takes none, not finite, or a "
          "negative clip)");
  }

  Model<Scalar> model;
  model.precision = precision;
  model.spec.input_size = input_size;
  model.spec.hidden_size = hidden_size;
  model.spec.num_layers = num_layers;
  model.bias = flags & 1;
  model.spec.bidirectional = flags & 2;
  model.spec.reset_after = flags & 4;
  model.batch_first = flags & 8;
  model.spec.reverse = flags & 16;
  model.spec.nonlinearities = functions;
  model.spec.input_dropout = input_dropout;
  model.spec.recurrent_dropout = recurrent_dropout;
  model.spec.dropout = dropout;
  const Index H = hidden_size, D = model.spec.directions();
  for (Index l = 0; l < num_layers; ++l)
    for (Index d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      const Index in_size = model.spec.layer_input_size(l);
      if (precision != Precision::kFloat) {
        QuantizedLayer q;
        q.input_size = in_size;
        q.hidden_size = H;
        q.reset_after = model.spec.reset_after;
        q.nonlinearities = functions;
        q.weight_ih = read_matrix(in, precision, 3 * H, in_size, "weight_ih" + suffix);
        q.weight_hh = read_matrix(in, precision, 3 * H, H, "weight_hh" + suffix);
        model.names.push_back("weight_ih" + suffix);
        model.names.push_back("weight_hh" + suffix);
        if (model.bias) {
          q.bias_ih = read_values<float>(in, 3 * H, 4);
          q.bias_hh = read_values<float>(in, 3 * H, 4);
          model.names.push_back("bias_ih" + suffix);
          model.names.push_back("bias_hh" + suffix);
        }
        model.quantized.push_back(std::move(q));
        continue;
      }
      std::vector<std::pair<std::string, Index>> entries = {{"weight_ih" + suffix, 3 * H * in_size},
                                                            {"weight_hh" + suffix, 3 * H * H}};
      if (model.bias) {
        entries.push_back({"bias_ih" + suffix, 3 * H});
        entries.push_back({"bias_hh" + suffix, 3 * H});
      }
      for (const auto& [name, count] : entries) {
        model.names.push_back(name);
        model.parameters.push_back(
            read_values<Scalar>(in, static_cast<std::size_t>(count), scalar_size));
      }
    }
  const std::size_t body = in.at();
  const auto stored = in.read<std::uint32_t>();
  if (in.at() != bytes.size()) in.fail("unexpected bytes after the checksum");
  if (crc32(bytes.data(), body) != stored) in.fail("checksum mismatch (the file is damaged)");
  return model;
}

template <typename Scalar>
void save_model(const Model<Scalar>& model, const std::string& path) {
  const StackSpec& spec = model.spec;
  const Index H = spec.hidden_size, D = spec.directions();
  const std::size_t per = model.bias ? 4 : 2;
  const bool quantized = model.precision != Precision::kFloat;
  if (quantized) {
    if (!std::is_same_v<Scalar, float>)
      throw std::invalid_argument("save_model: a quantized model is a Model<float>");
    if (model.quantized.size() != static_cast<std::size_t>(spec.num_layers * D) ||
        !model.parameters.empty())
      throw std::invalid_argument("save_model: wrong number of quantized layers for the spec");
    for (std::size_t k = 0; k < model.quantized.size(); ++k) {
      const QuantizedLayer& q = model.quantized[k];
      if (!matches_spec(q, spec, static_cast<Index>(k) / D) || q.precision() != model.precision ||
          q.has_bias() != model.bias)
        throw std::invalid_argument("save_model: quantized layer-direction " + std::to_string(k) +
                                    " does not match the model");
    }
  } else if (model.parameters.size() != static_cast<std::size_t>(spec.num_layers * D) * per) {
    throw std::invalid_argument("save_model: wrong number of parameters for the spec");
  }
  const bool sequence_dropout = spec.input_dropout != 0.0 || spec.recurrent_dropout != 0.0;
  std::vector<unsigned char> bytes(kMagic, kMagic + sizeof(kMagic));
  auto put = [&](auto value) {
    const auto* p = reinterpret_cast<const unsigned char*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(value));
  };
  put(quantized ? kQuantizedVersion : kVersion);
  put(static_cast<std::uint32_t>(sizeof(Scalar)));
  if (quantized) put(static_cast<std::uint32_t>(model.precision));
  put(static_cast<std::uint32_t>(spec.input_size));
  put(static_cast<std::uint32_t>(H));
  put(static_cast<std::uint32_t>(spec.num_layers));
  put(static_cast<std::uint32_t>((model.bias ? 1 : 0) | (spec.bidirectional ? 2 : 0) |
                                 (spec.reset_after ? 4 : 0) | (model.batch_first ? 8 : 0) |
                                 (spec.reverse ? 16 : 0) |
                                 (spec.nonlinearities.standard() ? 0 : kFunctionsFlag) |
                                 (sequence_dropout ? kSequenceDropoutFlag : 0)));
  put(spec.dropout);
  if (sequence_dropout) {
    put(spec.input_dropout);
    put(spec.recurrent_dropout);
  }
  if (!spec.nonlinearities.standard()) {
    const Nonlinearities& f = spec.nonlinearities;
    if (!f.valid()) throw std::invalid_argument("save_model: the spec's functions are not valid");
    put(static_cast<std::int32_t>(f.gate.kind));
    put(static_cast<std::int32_t>(f.candidate.kind));
    for (double v : {f.gate.alpha, f.gate.beta, f.candidate.alpha, f.candidate.beta, f.clip})
      put(v);
  }
  for (const QuantizedLayer& q : model.quantized) {
    for (const QuantizedMatrix* m : {&q.weight_ih, &q.weight_hh}) {
      for (float v : m->scales) put(v);
      for (std::int8_t v : m->int8) put(v);
      for (std::uint16_t v : m->bfloat16) put(v);
    }
    for (float v : q.bias_ih) put(v);
    for (float v : q.bias_hh) put(v);
  }
  for (std::size_t k = 0; k < model.parameters.size(); ++k) {
    const Index layer = static_cast<Index>(k / per) / D;
    const std::size_t kind = k % per;  // weight_ih, weight_hh, bias_ih, bias_hh
    const Index expected = kind == 0   ? 3 * H * spec.layer_input_size(layer)
                           : kind == 1 ? 3 * H * H
                                       : 3 * H;
    if (static_cast<Index>(model.parameters[k].size()) != expected)
      throw std::invalid_argument("save_model: parameter " + std::to_string(k) + " has " +
                                  std::to_string(model.parameters[k].size()) +
                                  " values, expected " + std::to_string(expected));
    for (Scalar v : model.parameters[k]) put(v);
  }
  put(crc32(bytes.data(), bytes.size()));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error(path + ": cannot write the file");
}

template struct Model<float>;
template struct Model<double>;
template Model<float> load_model<float>(const std::string&);
template Model<double> load_model<double>(const std::string&);
template void save_model<float>(const Model<float>&, const std::string&);
template void save_model<double>(const Model<double>&, const std::string&);

}  // namespace eigengru
