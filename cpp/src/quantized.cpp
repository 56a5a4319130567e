// Quantizing weights, checking quantized stacks, and the public quantized classes, which call
// the kernel set in use.
#include "eigengru/quantized.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "bfloat16.hpp"
#include "eigengru/stream.hpp"
#include "eigengru/threads.hpp"
#include "kernel_set.hpp"

namespace eigengru {
namespace {

bool quantized(Precision p) { return p == Precision::kBfloat16 || p == Precision::kInt8; }

void check_precision(const char* where, Precision p) {
  if (!quantized(p))
    throw std::invalid_argument(std::string(where) + ": precision must be bfloat16 or int8, got " +
                                precision_name(p));
}

bool matches(const QuantizedMatrix& m, Precision p, Index rows, Index cols) {
  return m.precision == p && m.rows == rows && m.cols == cols && m.valid();
}

void check_stack(const char* where, const StackSpec& spec, const QuantizedLayer* layers,
                 Index count) {
  const std::string w(where);
  if (spec.num_layers < 1 || spec.input_size < 1 || spec.hidden_size < 1)
    throw std::invalid_argument(w + ": sizes and num_layers must be positive");
  if (spec.reverse && spec.bidirectional)
    throw std::invalid_argument(w +
                                ": reverse is for one direction; a bidirectional stack "
                                "already runs both ways");
  if (!spec.nonlinearities.valid())
    throw std::invalid_argument(w + ": nonlinearities are not valid (see Nonlinearities)");
  if (layers == nullptr || count != spec.num_layers * spec.directions())
    throw std::invalid_argument(w + ": expected " +
                                std::to_string(spec.num_layers * spec.directions()) +
                                " layer-directions, got " + std::to_string(count));
  for (Index k = 0; k < count; ++k) {
    if (!matches_spec(layers[k], spec, k / spec.directions()))
      throw std::invalid_argument(w + ": layer-direction " + std::to_string(k) +
                                  " does not match the spec");
    if (layers[k].precision() != layers[0].precision())
      throw std::invalid_argument(w + ": every layer-direction must have one precision");
  }
}

}  // namespace

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::kFloat: return "float";
    case Precision::kBfloat16: return "bfloat16";
    case Precision::kInt8: return "int8";
  }
  return "unknown";
}

QuantizedMatrix QuantizedMatrix::quantize(const float* w, Index rows, Index cols,
                                          Precision precision) {
  check_precision("QuantizedMatrix::quantize", precision);
  if (rows < 0 || cols < 0 || (rows * cols > 0 && w == nullptr))
    throw std::invalid_argument("QuantizedMatrix::quantize: bad sizes or null weights");
  if (precision == Precision::kInt8 && cols > kMaxInt8Columns)
    throw std::invalid_argument("QuantizedMatrix::quantize: int8 takes at most " +
                                std::to_string(kMaxInt8Columns) + " columns (input_size and " +
                                "hidden_size), got " + std::to_string(cols) +
                                ": the int32 sums would overflow; use bfloat16");
  for (Index k = 0; k < rows * cols; ++k)
    if (!std::isfinite(w[k]))
      throw std::invalid_argument("QuantizedMatrix::quantize: weight " + std::to_string(k) +
                                  " is not finite");
  QuantizedMatrix m;
  m.precision = precision;
  m.rows = rows;
  m.cols = cols;
  if (precision == Precision::kBfloat16) {
    m.bfloat16.resize(rows * cols);
    std::transform(w, w + rows * cols, m.bfloat16.begin(), detail::to_bfloat16);
    return m;
  }
  m.int8.resize(rows * cols);
  m.scales.resize(rows);
  for (Index r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    double largest = 0;
    for (Index c = 0; c < cols; ++c) largest = std::max(largest, std::fabs(double(row[c])));
    m.scales[r] = static_cast<float>(largest / 127);
    for (Index c = 0; c < cols; ++c)
      m.int8[r * cols + c] = static_cast<std::int8_t>(
          largest > 0 ? std::nearbyint(double(row[c]) * 127 / largest) : 0.0);
  }
  return m;
}

float QuantizedMatrix::value(Index r, Index c) const {
  if (precision == Precision::kInt8) return scales[r] * int8[r * cols + c];
  return detail::from_bfloat16(bfloat16[r * cols + c]);
}

bool QuantizedMatrix::valid() const {
  if (rows < 0 || cols < 0) return false;
  const auto size = static_cast<std::size_t>(rows * cols);
  if (precision == Precision::kBfloat16)
    return bfloat16.size() == size && int8.empty() && scales.empty();
  if (precision != Precision::kInt8) return false;
  return cols <= kMaxInt8Columns && int8.size() == size && bfloat16.empty() &&
         scales.size() == std::size_t(rows) &&
         std::all_of(int8.begin(), int8.end(), [](std::int8_t q) { return q >= -127; }) &&
         std::all_of(scales.begin(), scales.end(),
                     [](float s) { return std::isfinite(s) && s >= 0; });
}

QuantizedLayer quantize(const LayerWeights<float>& w, Precision precision) {
  check_precision("quantize", precision);
  if (w.input_size < 1 || w.hidden_size < 1 || w.weight_ih == nullptr || w.weight_hh == nullptr ||
      (w.bias_ih == nullptr) != (w.bias_hh == nullptr) || !w.nonlinearities.valid())
    throw std::invalid_argument("quantize: the weights are incomplete or their sizes invalid");
  const Index H = w.hidden_size, G = 3 * H;
  QuantizedLayer q;
  q.input_size = w.input_size;
  q.hidden_size = H;
  q.reset_after = w.reset_after;
  q.nonlinearities = w.nonlinearities;
  q.weight_ih = QuantizedMatrix::quantize(w.weight_ih, G, w.input_size, precision);
  q.weight_hh = QuantizedMatrix::quantize(w.weight_hh, G, H, precision);
  if (w.has_bias()) {
    q.bias_ih.assign(w.bias_ih, w.bias_ih + G);
    q.bias_hh.assign(w.bias_hh, w.bias_hh + G);
  }
  return q;
}

bool matches_spec(const QuantizedLayer& layer, const StackSpec& spec, Index l) {
  const Index H = spec.hidden_size, G = 3 * H;
  const Precision p = layer.weight_ih.precision;
  const bool biases =
      (layer.bias_ih.empty() && layer.bias_hh.empty()) ||
      (layer.bias_ih.size() == std::size_t(G) && layer.bias_hh.size() == std::size_t(G));
  return quantized(p) && layer.input_size == spec.layer_input_size(l) && layer.hidden_size == H &&
         layer.reset_after == spec.reset_after && layer.nonlinearities == spec.nonlinearities &&
         matches(layer.weight_ih, p, G, layer.input_size) && matches(layer.weight_hh, p, G, H) &&
         biases;
}

QuantizedGRU::QuantizedGRU(const StackSpec& spec, std::vector<QuantizedLayer> layers)
    : spec_(spec), layers_(std::move(layers)) {
  check_stack("QuantizedGRU", spec_, layers_.data(), static_cast<Index>(layers_.size()));
  packed_.reset(detail::active_kernel_set().quantized.new_stack(spec_, layers_.data()));
}

QuantizedGRU::~QuantizedGRU() = default;
QuantizedGRU::QuantizedGRU(QuantizedGRU&&) noexcept = default;
QuantizedGRU& QuantizedGRU::operator=(QuantizedGRU&&) noexcept = default;

void QuantizedGRU::forward(Index steps, Index batch, const Index* lengths, const float* x,
                           const float* h0, float* out, float* h_n) const {
  if (steps < 0 || batch < 0)
    throw std::invalid_argument("QuantizedGRU::forward: steps and batch must not be negative");
  if (steps * batch > 0 && (x == nullptr || out == nullptr))
    throw std::invalid_argument("QuantizedGRU::forward: x and out must not be null");
  packed_->forward(steps, batch, lengths, x, h0, out, h_n, get_num_threads());
}

std::string quantized_kernel(Precision precision) {
  check_precision("quantized_kernel", precision);
  return detail::active_kernel_set().quantized.kernel(precision);
}

template <typename Scalar>
Stream<Scalar>::Stream(const StackSpec& spec, const QuantizedLayer* layers, Index batch)
    : spec_(spec), batch_(batch) {
  if constexpr (!std::is_same_v<Scalar, float>) {
    throw std::invalid_argument("Stream: a quantized stack runs in float: use Stream<float>");
  } else {
    if (spec.bidirectional || spec.reverse)
      throw std::invalid_argument(std::string("Stream: a ") +
                                  (spec.reverse ? "reverse" : "bidirectional") +
                                  " stack cannot run step by step (a step would need the inputs "
                                  "that come after it)");
    if (batch < 1) throw std::invalid_argument("Stream: batch must be positive");
    check_stack("Stream", spec, layers, layers == nullptr ? 0 : spec.num_layers);
    state_.reset(detail::active_kernel_set().quantized.new_stream(spec, layers, batch));
  }
}

template Stream<float>::Stream(const StackSpec&, const QuantizedLayer*, Index);
template Stream<double>::Stream(const StackSpec&, const QuantizedLayer*, Index);

}  // namespace eigengru
