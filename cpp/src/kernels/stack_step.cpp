#include "stack_step.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "denormals.hpp"
#include "forward_step.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

template <typename Scalar>
StackStep<Scalar>::StackStep(const StackSpec& spec, const LayerWeights<Scalar>* weights)
    : spec_(spec) {
  if (spec.num_layers < 1 || spec.hidden_size < 1 || spec.input_size < 1)
    throw std::invalid_argument("StackStep: sizes and num_layers must be positive");
  if (weights == nullptr) throw std::invalid_argument("StackStep: weights must not be null");
  const Index D = spec.directions();
  for (Index k = 0; k < spec.num_layers * D; ++k) {
    if (!detail::matches_spec(weights[k], spec.layer_input_size(k / D), spec.hidden_size,
                              spec.reset_after, spec.nonlinearities))
      throw std::invalid_argument("StackStep: the weights of layer-direction " + std::to_string(k) +
                                  " do not match the spec");
    layers_.emplace_back(weights[k]);
  }
}

template <typename Scalar>
void StackStep<Scalar>::reserve(Index batch) {
  if (gx_.rows() >= batch) return;
  const Index H = spec_.hidden_size;
  gx_.resize(batch, 3 * H);
  gh_.resize(batch, 3 * H);
  records_.resize(spec_.reset_after ? 0 : batch, 4 * H);  // reset before only
  zeros_ = RowMatrix<Scalar>::Zero(batch, H);
  for (RowMatrix<Scalar>& rows : between_) rows.resize(batch, spec_.directions() * H);
}

template <typename Scalar>
void StackStep<Scalar>::forward(Index batch, const Scalar* x, const Scalar* h0, Scalar* h_n,
                                Scalar* out, int threads) {
  reserve(batch);
  const detail::FlushDenormals flush;
  const Index H = spec_.hidden_size, D = spec_.directions(), L = spec_.num_layers;
  threads = std::max(threads, 1);
  const Scalar* input = x;
  for (Index l = 0; l < L; ++l) {
    const Index I = spec_.layer_input_size(l);
    const bool top = l + 1 == L;
    // Two directions' output rows side by side: the next layer's input, in the buffer that
    // this layer's input is not in (or `out` after the top layer). One direction's next input
    // is its new state itself.
    Scalar* output = top ? out : between_[l % 2].data();
    for (Index d = 0; d < D; ++d) {
      const Index k = l * D + d;
      const Scalar* h = h0 != nullptr ? h0 + k * batch * H : zeros_.data();
      Scalar* h_next = h_n + k * batch * H;
      // The row slices of this direction's threads in the sequence forward.
      const Index slices =
          detail::row_threads(detail::direction_threads(D, batch, threads, d), batch);
      for (Index s = 0; s < slices; ++s) {  // as the sequence forward's thread s
        const detail::Slice rows = detail::share(batch, s, slices);
        const Index r0 = rows.begin;
        detail::layer_step(layers_[k], spec_.reset_after, rows.size(), input + r0 * I, h + r0 * H,
                           h_next + r0 * H, spec_.reset_after ? nullptr : records_.data(),
                           gx_.data(), gh_.data(), false);
      }
      if (top || D == 2)
        for (Index b = 0; b < batch; ++b) std::copy_n(h_next + b * H, H, output + (b * D + d) * H);
    }
    input = D == 1 ? h_n + l * batch * H : output;
  }
}

template class StackStep<float>;
template class StackStep<double>;

}  // namespace eigengru::EIGENGRU_KERNEL_SET
