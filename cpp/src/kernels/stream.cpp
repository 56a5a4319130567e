#include "stream.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "denormals.hpp"
#include "forward_step.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

template <typename Scalar>
Stream<Scalar>::Stream(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index batch)
    : spec_(spec), batch_(batch) {
  if (spec.bidirectional || spec.reverse)
    throw std::invalid_argument(std::string("Stream: a ") +
                                (spec.reverse ? "reverse" : "bidirectional") +
                                " stack cannot run step by step (a step would need the inputs "
                                "that come after it)");
  if (spec.num_layers < 1 || spec.hidden_size < 1 || spec.input_size < 1 || batch < 1)
    throw std::invalid_argument("Stream: sizes, num_layers and batch must be positive");
  if (weights == nullptr) throw std::invalid_argument("Stream: weights must not be null");
  const Index H = spec.hidden_size, G = 3 * H;
  for (Index l = 0; l < spec.num_layers; ++l) {
    if (!detail::matches_spec(weights[l], spec.layer_input_size(l), H, spec.reset_after,
                              spec.nonlinearities))
      throw std::invalid_argument("Stream: the weights of layer " + std::to_string(l) +
                                  " do not match the spec");
    layers_.emplace_back(weights[l]);
  }
  state_ = Vector<Scalar>::Zero(spec.num_layers * batch * H);
  gx_ = RowMatrix<Scalar>::Zero(batch, G);
  gh_ = RowMatrix<Scalar>::Zero(batch, G);
  records_ = RowMatrix<Scalar>::Zero(spec.reset_after ? 0 : batch, 4 * H);  // reset before only
}

template <typename Scalar>
void Stream<Scalar>::step(const Scalar* x, Scalar* out) noexcept {
  const detail::FlushDenormals flush;
  const Index H = spec_.hidden_size, B = batch_;
  const Scalar* input = x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    Scalar* h = state_.data() + static_cast<Index>(l) * B * H;  // updated in place
    detail::layer_step(layers_[l], spec_.reset_after, B, input, h, h,
                       spec_.reset_after ? nullptr : records_.data(), gx_.data(), gh_.data(),
                       backwards_);
    input = h;
  }
  std::copy_n(state_.data() + (spec_.num_layers - 1) * B * H, B * H, out);
  backwards_ = !backwards_;  // panel order, alternated step by step: see PackedMatrix::multiply
}

template <typename Scalar>
void Stream<Scalar>::reset() noexcept {
  state_.setZero();
  backwards_ = false;  // a single row's products round by the order: a rerun repeats it
}

template <typename Scalar>
void Stream<Scalar>::reset(const Scalar* h0) noexcept {
  std::copy_n(h0, state_.size(), state_.data());
  backwards_ = false;
}

template class Stream<float>;
template class Stream<double>;

}  // namespace eigengru::EIGENGRU_KERNEL_SET
