#include "gru_cell.hpp"

#include <algorithm>
#include <stdexcept>

#include "cell.hpp"
#include "denormals.hpp"
#include "forward_step.hpp"
#include "transposed_product.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace {

template <typename Scalar>
const LayerWeights<Scalar>& checked(const LayerWeights<Scalar>& w) {
  if (w.input_size < 1 || w.hidden_size < 1)
    throw std::invalid_argument("GRUCell: input_size and hidden_size must be positive");
  if (!w.nonlinearities.valid())
    throw std::invalid_argument("GRUCell: nonlinearities are not valid (see Nonlinearities)");
  if (!detail::matches_spec(w, w.input_size, w.hidden_size, w.reset_after, w.nonlinearities))
    throw std::invalid_argument(
        "GRUCell: weight_ih and weight_hh are required, and the biases both or neither");
  return w;
}

/// out (rows x cols) = or += aᵀ b, with a (B x rows, rows lda apart) and b (B x cols, rows ldb
/// apart): the sum over the batch of each row's outer product, a weight gradient, by the
/// backward's own allocation-free product.
template <typename Scalar>
void add_outer(Scalar* out, Index rows, Index cols, const Scalar* a, Index lda, const Scalar* b,
               Index ldb, Index batch, bool accumulate, Scalar* scratch) {
  if (!accumulate) std::fill_n(out, rows * cols, Scalar(0));
  detail::add_transposed_product(a, lda, rows, b, ldb, cols, batch, out, cols, 1, scratch);
}

/// out (n) = or += the column sums of a (B x n): a bias gradient.
template <typename Scalar>
void add_column_sums(Scalar* out, Index n, const ConstMatrixMap<Scalar>& a, bool accumulate) {
  Eigen::Map<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> target(out, n);
  if (accumulate)
    target += a.colwise().sum();
  else
    target = a.colwise().sum();
}

}  // namespace

template <typename Scalar>
GRUCell<Scalar>::GRUCell(const LayerWeights<Scalar>& w)
    : hidden_size_(checked(w).hidden_size),
      reset_after_(w.reset_after),
      has_bias_(w.has_bias()),
      forward_(w) {
  const Index H = hidden_size_, I = w.input_size;
  w_ih_.pack(w.weight_ih, 3 * H, I, I, 1);
  if (reset_after_) {
    w_hh_.pack(w.weight_hh, 3 * H, H, H, 1);
  } else {
    w_hh_.pack(w.weight_hh, 2 * H, H, H, 1);
    w_hn_.pack(w.weight_hh + 2 * H * H, H, H, H, 1);
  }
  product_scratch_.resize(detail::transposed_product_scratch<Scalar>(std::max(I, H), 1));
  reserve(1);
}

template <typename Scalar>
void GRUCell<Scalar>::reserve(Index batch) {
  if (gx_.rows() >= batch) return;
  const Index H = hidden_size_;
  gx_.resize(batch, 3 * H);
  gh_.resize(batch, 3 * H);
  records_.resize(batch, 4 * H);
  dq_.resize(batch, H);
}

template <typename Scalar>
void GRUCell<Scalar>::forward(Index batch, const Scalar* x, const Scalar* h, Scalar* h_next,
                              Scalar* record) {
  if (batch < 1) return;
  reserve(batch);
  const detail::FlushDenormals flush;
  if (record == nullptr && !reset_after_) record = records_.data();  // the step's scratch
  // Always the same panel order: a single row's sums then round the same on every call.
  detail::layer_step(forward_, reset_after_, batch, x, h, h_next, record, gx_.data(), gh_.data(),
                     false);
}

template <typename Scalar>
void GRUCell<Scalar>::backward(Index batch, const Scalar* x, const Scalar* h, Scalar* record,
                               const Scalar* grad_h_next, Scalar* dx, Scalar* dh,
                               const LayerGradients<Scalar>& g, bool accumulate) {
  if (batch < 1) return;
  reserve(batch);
  const detail::FlushDenormals flush;
  const Index H = hidden_size_, I = input_size(), G = 3 * H, R = 4 * H, B = batch;
  Scalar* dgh = gh_.data();  // (B, 3H): the left factor of the product with W_hh
  std::copy_n(grad_h_next, B * H, dh);
  const detail::GateFunctions<Scalar>* f = forward_.functions_or_null();
  // The gate passes (cell.hpp, with the derivation) leave the record as
  // [da_r, da_z, da_n, m'] and dh as its direct part, dL/dh' * z.
  if (reset_after_) {
    for (Index b = 0; b < B; ++b)
      detail::backward_reset_after(H, h + b * H, record + b * R, dh + b * H, dgh + b * G, f);
    w_hh_.multiply(dgh, G, B, dh, H, true);  // dh += [da_r, da_z, dm] W_hh
  } else {
    for (Index b = 0; b < B; ++b)
      detail::backward_update_candidate(H, h + b * H, record + b * R, dh + b * H, dgh + b * G, f);
    w_hn_.multiply(dgh + 2 * H, G, B, dq_.data(), H, false);  // dq = da_n W_hn
    for (Index b = 0; b < B; ++b)
      detail::backward_reset(H, h + b * H, dq_.data() + b * H, record + b * R, dh + b * H,
                             dgh + b * G, f);
    w_hh_.multiply(dgh, G, B, dh, H, true);  // dh += [da_r, da_z] W_hr,hz
  }
  if (dx != nullptr) w_ih_.multiply(record, R, B, dx, I, false);  // [da_r, da_z, da_n] W_ih

  // Parameter gradients: the pre-activation gradients' outer products with what they
  // multiplied. dgh is [da_r, da_z, dm] (reset_after: dm multiplied h through W_hn) or
  // [da_r, da_z, da_n] (reset before: da_n multiplied m = r * h, kept in the record).
  const ConstMatrixMap<Scalar> da(record, B, G, Eigen::OuterStride<>(R));
  const ConstMatrixMap<Scalar> dgh_rows(dgh, B, G, Eigen::OuterStride<>(G));
  Scalar* scratch = product_scratch_.data();
  if (g.weight_ih != nullptr) add_outer(g.weight_ih, G, I, record, R, x, I, B, accumulate, scratch);
  if (g.weight_hh != nullptr) {
    if (reset_after_) {
      add_outer(g.weight_hh, G, H, dgh, G, h, H, B, accumulate, scratch);
    } else {
      add_outer(g.weight_hh, 2 * H, H, dgh, G, h, H, B, accumulate, scratch);
      add_outer(g.weight_hh + 2 * H * H, H, H, dgh + 2 * H, G, record + 3 * H, R, B, accumulate,
                scratch);
    }
  }
  if (has_bias_ && g.bias_ih != nullptr) add_column_sums(g.bias_ih, G, da, accumulate);
  if (has_bias_ && g.bias_hh != nullptr) add_column_sums(g.bias_hh, G, dgh_rows, accumulate);
}

template class GRUCell<float>;
template class GRUCell<double>;

}  // namespace eigengru::EIGENGRU_KERNEL_SET
