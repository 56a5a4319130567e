#include "eigengru/stream.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cell.hpp"
#include "denormals.hpp"

namespace eigengru {

template <typename Scalar>
Stream<Scalar>::Stream(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index batch)
    : spec_(spec), batch_(batch) {
  if (spec.bidirectional)
    throw std::invalid_argument("Stream: a bidirectional stack cannot run step by step");
  if (spec.num_layers < 1 || spec.hidden_size < 1 || spec.input_size < 1 || batch < 1)
    throw std::invalid_argument("Stream: sizes, num_layers and batch must be positive");
  if (weights == nullptr) throw std::invalid_argument("Stream: weights must not be null");
  const Index H = spec.hidden_size, G = 3 * H;
  for (Index l = 0; l < spec.num_layers; ++l) {
    const LayerWeights<Scalar>& w = weights[l];
    if (w.input_size != spec.layer_input_size(l) || w.hidden_size != H ||
        w.reset_after != spec.reset_after || w.weight_ih == nullptr || w.weight_hh == nullptr ||
        (w.bias_ih == nullptr) != (w.bias_hh == nullptr))
      throw std::invalid_argument("Stream: the weights of layer " + std::to_string(l) +
                                  " do not match the spec");
    Layer layer;
    layer.input_size = w.input_size;
    layer.w_ih_t.pack(w.weight_ih, w.input_size, G, 1, w.input_size);
    if (spec.reset_after) {
      layer.w_hh_t.pack(w.weight_hh, H, G, 1, H);
    } else {
      layer.w_hh_t.pack(w.weight_hh, H, 2 * H, 1, H);
      layer.w_hn_t.pack(w.weight_hh + 2 * H * H, H, H, 1, H);
    }
    layer.input_bias = Vector<Scalar>::Zero(G);
    if (w.has_bias()) {
      layer.input_bias = Eigen::Map<const Vector<Scalar>>(w.bias_ih, G);
      const Index folded = spec.reset_after ? 2 * H : G;
      layer.input_bias.head(folded) += Eigen::Map<const Vector<Scalar>>(w.bias_hh, folded);
      if (spec.reset_after) layer.bias_hn = Eigen::Map<const Vector<Scalar>>(w.bias_hh + 2 * H, H);
    }
    layers_.push_back(std::move(layer));
  }
  state_ = Vector<Scalar>::Zero(spec.num_layers * batch * H);
  gx_ = RowMatrix<Scalar>::Zero(batch, G);
  gh_ = RowMatrix<Scalar>::Zero(batch, G);
  records_ = RowMatrix<Scalar>::Zero(batch, 4 * H);
}

template <typename Scalar>
void Stream<Scalar>::step(const Scalar* x, Scalar* out) noexcept {
  const detail::FlushDenormals flush;
  const Index H = spec_.hidden_size, G = 3 * H, R = 4 * H, B = batch_;
  const Scalar* input = x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    Scalar* h = state_.data() + static_cast<Index>(l) * B * H;  // updated in place
    for (Index b = 0; b < B; ++b) std::copy_n(layer.input_bias.data(), G, gx_.data() + b * G);
    layer.w_ih_t.multiply(input, layer.input_size, B, gx_.data(), G, true);
    layer.w_hh_t.multiply(h, H, B, gh_.data(), G, false);
    const Scalar* bias_hn = layer.bias_hn.size() > 0 ? layer.bias_hn.data() : nullptr;
    for (Index b = 0; b < B; ++b) {
      if (spec_.reset_after) {
        detail::forward_reset_after(H, gx_.data() + b * G, gh_.data() + b * G, bias_hn,
                                    h + b * H, records_.data() + b * R, h + b * H);
      } else {
        detail::forward_gates_rz(H, gx_.data() + b * G, gh_.data() + b * G, h + b * H,
                                 records_.data() + b * R);
      }
    }
    if (!spec_.reset_after) {
      layer.w_hn_t.multiply(records_.data() + 3 * H, R, B, gh_.data() + 2 * H, G, false);
      for (Index b = 0; b < B; ++b)
        detail::forward_candidate(H, gx_.data() + b * G, gh_.data() + b * G + 2 * H, h + b * H,
                                  records_.data() + b * R, h + b * H);
    }
    input = h;
  }
  std::copy_n(state_.data() + (spec_.num_layers - 1) * B * H, B * H, out);
}

template <typename Scalar>
void Stream<Scalar>::reset() noexcept {
  state_.setZero();
}

template <typename Scalar>
void Stream<Scalar>::reset(const Scalar* h0) noexcept {
  std::copy_n(h0, state_.size(), state_.data());
}

template class Stream<float>;
template class Stream<double>;

}  // namespace eigengru
