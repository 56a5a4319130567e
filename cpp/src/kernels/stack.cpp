#include "stack.hpp"

#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "forward_weights.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace detail {
namespace {

/// The dropout mask of one layer's input: each entry 0 with probability p, else 1 / (1 - p).
/// mt19937_64 and the 53-bit conversion are fully specified, so masks are the same everywhere.
template <typename Scalar>
void fill_dropout_mask(RowMatrix<Scalar>& mask, Index rows, Index cols, double p,
                       std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  const Scalar keep = static_cast<Scalar>(1.0 / (1.0 - p));
  mask.resize(rows, cols);
  for (Index k = 0; k < mask.size(); ++k) {
    const double u = static_cast<double>(gen() >> 11) * 0x1.0p-53;
    mask.data()[k] = u < p ? Scalar(0) : keep;
  }
}

template <typename Scalar>
void check_stack(const char* fn, const StackSpec& spec, const LayerWeights<Scalar>* weights,
                 Index steps, Index batch, const Index* lengths) {
  const std::string where(fn);
  if (spec.num_layers < 1) throw std::invalid_argument(where + ": num_layers must be at least 1");
  for (const auto& [name, p] : {std::pair<const char*, double>{"dropout", spec.dropout},
                                {"input_dropout", spec.input_dropout},
                                {"recurrent_dropout", spec.recurrent_dropout}})
    if (!(p >= 0.0 && p < 1.0))
      throw std::invalid_argument(where + ": " + name + " must be in [0, 1)");
  if (!spec.nonlinearities.valid())
    throw std::invalid_argument(where + ": nonlinearities are not valid (see Nonlinearities)");
  if (spec.reverse && spec.bidirectional)
    throw std::invalid_argument(where +
                                ": reverse is for one direction; a bidirectional stack "
                                "already runs both ways");
  if (weights == nullptr) throw std::invalid_argument(where + ": weights must not be null");
  for (Index l = 0; l < spec.num_layers; ++l)
    for (Index d = 0; d < spec.directions(); ++d) {
      const auto& w = weights[l * spec.directions() + d];
      if (!matches_spec(w, spec.layer_input_size(l), spec.hidden_size, spec.reset_after,
                        spec.nonlinearities))
        throw std::invalid_argument(where + ": the weights of layer " + std::to_string(l) +
                                    (d ? " (reverse)" : "") + " do not match the spec");
    }
  if (steps < 0 || batch < 0)
    throw std::invalid_argument(where + ": steps and batch must not be negative");
  check_lengths(fn, lengths, batch, steps);
}

}  // namespace

template <typename Scalar>
struct StackPasses {
  static void forward(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index T, Index B,
                      const Index* lengths, const Scalar* x, const Scalar* h0, Scalar* out,
                      Scalar* h_n, std::uint64_t dropout_seed, StackCache<Scalar>* cache) {
    const Index L = spec.num_layers, D = spec.directions(), H = spec.hidden_size;
    const bool training = cache != nullptr;
    RowMatrix<Scalar> own_between[2];  // outputs of the layers below the last, in turn
    RowMatrix<Scalar>* between = own_between;
    const bool input_dropout = training && spec.input_dropout > 0;
    const bool recurrent_dropout = training && spec.recurrent_dropout > 0;
    if (training) {  // reuses the cache's memory; whatever forward it held is replaced
      cache->ready_ = false;
      cache->layers_.resize(L * D);
      cache->dropout_masks_.resize(spec.dropout > 0 ? L - 1 : 0);
      cache->input_masks_.resize(L * D);
      for (auto& mask : cache->input_masks_) mask.resize(0, 0);
      between = cache->between_;
    }
    RowMatrix<Scalar> own_out;
    if (out == nullptr) {
      own_out.resize(T * B, D * H);
      out = own_out.data();
    }
    const Scalar* input = x;
    for (Index l = 0; l < L; ++l) {
      if (training && l > 0 && spec.dropout > 0) {
        RowMatrix<Scalar>& mask = cache->dropout_masks_[l - 1];
        fill_dropout_mask(mask, T * B, D * H, spec.dropout, dropout_seed + l);
        auto& dropped = between[(l - 1) % 2];  // the input itself is not needed again
        dropped.array() *= mask.array();
        input = dropped.data();
      }
      Scalar* dst = out;
      if (l < L - 1) {
        between[l % 2].resize(T * B, D * H);
        dst = between[l % 2].data();
      }
      // Per-sequence dropout: each direction's own masks, drawn in order, before the threads.
      const Index in = spec.layer_input_size(l);
      const Scalar* direction_input[2] = {input, input};
      const Scalar* recurrent_masks[2] = {nullptr, nullptr};
      RowMatrix<Scalar> own_recurrent[2];
      for (Index d = 0; d < D && (input_dropout || recurrent_dropout); ++d) {
        const Index k = l * D + d;
        const std::uint64_t seed = dropout_seed + L + 2 * k;  // L - 1 seeds before are dropout's
        if (input_dropout) {
          RowMatrix<Scalar>& mask = cache->input_masks_[k];
          fill_dropout_mask(mask, B, in, spec.input_dropout, seed);
          RowMatrix<Scalar>& masked = cache->masked_inputs_[d];
          masked.resize(T * B, in);
          for (Index t = 0; t < T; ++t)
            masked.middleRows(t * B, B) =
                Eigen::Map<const RowMatrix<Scalar>>(input + t * B * in, B, in).cwiseProduct(mask);
          direction_input[d] = masked.data();
        }
        if (recurrent_dropout) {
          fill_dropout_mask(own_recurrent[d], B, H, spec.recurrent_dropout, seed + 1);
          recurrent_masks[d] = own_recurrent[d].data();
        }
      }
      for_each_direction(D, B, get_num_threads(), [&](Index d, int threads) {
        Sequence seq{T, B, lengths, d == 1 || spec.reverse, D * H, threads};
        const Index k = l * D + d;
        const Scalar* h0_k = h0 != nullptr ? h0 + k * B * H : nullptr;
        Scalar* h_n_k = h_n != nullptr ? h_n + k * B * H : nullptr;
        if (training)
          forward_training(weights[k], seq, direction_input[d], h0_k, dst + d * H, h_n_k,
                           cache->layers_[k], recurrent_masks[d]);
        else
          EIGENGRU_KERNEL_SET::forward(weights[k], seq, input, h0_k, dst + d * H, h_n_k);
      });
      input = dst;
    }
    if (!training) return;
    cache->spec_ = spec;
    cache->steps_ = T;
    cache->batch_ = B;
    cache->ready_ = true;
  }

  static void backward(StackCache<Scalar>& c, const Scalar* grad_out, const Scalar* grad_h_n,
                       Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>* grads,
                       bool keep) {
    if (!c.ready_)
      throw std::logic_error(
          "stack_backward: no training forward to differentiate (run stack_forward_training "
          "first; each backward consumes the forward it differentiates)");
    const StackSpec& spec = c.spec_;
    const Index L = spec.num_layers, D = spec.directions(), H = spec.hidden_size;
    const Index T = c.steps_, B = c.batch_;
    // The layers' outputs are not needed any more: their buffers take the gradients.
    RowMatrix<Scalar>* grad_between = c.between_;  // dL/d(input of layer l), l >= 1
    const Scalar* grad_above = grad_out;
    for (Index l = L - 1; l >= 0; --l) {
      Scalar* grad_in = grad_x;
      if (l > 0) {
        grad_between[l % 2].resize(T * B, D * H);
        grad_in = grad_between[l % 2].data();
      }
      // Both directions add into grad_in; side by side, or when each direction's input had its
      // own dropout mask, the reverse one gets its own buffer.
      RowMatrix<Scalar> reverse_grad_in;
      const int threads = get_num_threads();
      const bool side_by_side = directions_side_by_side(D, B, threads);
      const Index in = spec.layer_input_size(l);
      const bool masked = c.input_mask(l * D) != nullptr;
      const bool own_buffer = D == 2 && (side_by_side || masked) && grad_in != nullptr;
      if (own_buffer) reverse_grad_in.resize(T * B, in);
      for_each_direction(D, B, threads, [&](Index d, int) {
        const Index k = l * D + d;
        Scalar* target = grad_in;
        bool accumulate = d == 1;
        if (d == 1 && own_buffer) {
          target = reverse_grad_in.data();
          accumulate = false;
        }
        EIGENGRU_KERNEL_SET::backward(
            c.layers_[k], grad_above != nullptr ? grad_above + d * H : nullptr,
            grad_h_n != nullptr ? grad_h_n + k * B * H : nullptr, target,
            grad_h0 != nullptr ? grad_h0 + k * B * H : nullptr, grads[k], accumulate, keep);
      });
      if (masked && grad_in != nullptr) {  // through each direction's input mask
        for (Index t = 0; t < T; ++t) {
          Eigen::Map<RowMatrix<Scalar>> rows(grad_in + t * B * in, B, in);
          rows.array() *= c.input_masks_[l * D].array();
          if (own_buffer)
            rows.array() +=
                reverse_grad_in.middleRows(t * B, B).array() * c.input_masks_[l * D + 1].array();
        }
      } else if (reverse_grad_in.size() > 0) {
        Eigen::Map<RowMatrix<Scalar>>(grad_in, T * B, in) += reverse_grad_in;
      }
      if (l > 0 && spec.dropout > 0) grad_between[l % 2].array() *= c.dropout_masks_[l - 1].array();
      grad_above = grad_in;
    }
    if (!keep) c.ready_ = false;  // consumed; the memory stays for the next forward
  }
};

}  // namespace detail

template <typename Scalar>
void stack_forward(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                   Index batch, const Index* lengths, const Scalar* x, const Scalar* h0,
                   Scalar* out, Scalar* h_n) {
  detail::check_stack("stack_forward", spec, weights, steps, batch, lengths);
  detail::StackPasses<Scalar>::forward(spec, weights, steps, batch, lengths, x, h0, out, h_n, 0,
                                       nullptr);
}

template <typename Scalar>
void stack_forward_training(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                            Index batch, const Index* lengths, const Scalar* x, const Scalar* h0,
                            Scalar* out, Scalar* h_n, std::uint64_t dropout_seed,
                            StackCache<Scalar>& cache) {
  detail::check_stack("stack_forward_training", spec, weights, steps, batch, lengths);
  detail::StackPasses<Scalar>::forward(spec, weights, steps, batch, lengths, x, h0, out, h_n,
                                       dropout_seed, &cache);
}

template <typename Scalar>
void stack_backward(StackCache<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
                    Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>* grads,
                    bool keep_cache) {
  detail::StackPasses<Scalar>::backward(cache, grad_out, grad_h_n, grad_x, grad_h0, grads,
                                        keep_cache);
}

#define EIGENGRU_INSTANTIATE(Scalar)                                                               \
  template void stack_forward<Scalar>(const StackSpec&, const LayerWeights<Scalar>*, Index, Index, \
                                      const Index*, const Scalar*, const Scalar*, Scalar*,         \
                                      Scalar*);                                                    \
  template void stack_forward_training<Scalar>(                                                    \
      const StackSpec&, const LayerWeights<Scalar>*, Index, Index, const Index*, const Scalar*,    \
      const Scalar*, Scalar*, Scalar*, std::uint64_t, StackCache<Scalar>&);                        \
  template void stack_backward<Scalar>(StackCache<Scalar>&, const Scalar*, const Scalar*, Scalar*, \
                                       Scalar*, const LayerGradients<Scalar>*, bool);
EIGENGRU_INSTANTIATE(float)
EIGENGRU_INSTANTIATE(double)
#undef EIGENGRU_INSTANTIATE

}  // namespace eigengru::EIGENGRU_KERNEL_SET
