#include "eigengru/forward_weights.hpp"

#include <stdexcept>
#include <string>

namespace eigengru::detail {

template <typename Scalar>
ForwardWeights<Scalar>::ForwardWeights(const LayerWeights<Scalar>& w) : input_size(w.input_size) {
  const Index H = w.hidden_size, I = w.input_size, G = 3 * H;
  w_ih_t.pack(w.weight_ih, I, G, 1, I);  // B(k, j) = W(j, k): row stride 1, column stride
  if (w.reset_after) {
    w_hh_t.pack(w.weight_hh, H, G, 1, H);
  } else {  // r must be known before W_hn can be applied: two products
    w_hh_t.pack(w.weight_hh, H, 2 * H, 1, H);
    w_hn_t.pack(w.weight_hh + 2 * H * H, H, H, 1, H);
  }
  input_bias = Vector<Scalar>::Zero(G);
  if (w.has_bias()) {
    input_bias = Eigen::Map<const Vector<Scalar>>(w.bias_ih, G);
    const Index folded = w.reset_after ? 2 * H : G;
    input_bias.head(folded) += Eigen::Map<const Vector<Scalar>>(w.bias_hh, folded);
    if (w.reset_after) bias_hn = Eigen::Map<const Vector<Scalar>>(w.bias_hh + 2 * H, H);
  }
}

void check_lengths(const char* where, const Index* lengths, Index batch, Index steps) {
  if (lengths == nullptr) return;
  for (Index b = 0; b < batch; ++b)
    if (lengths[b] < 1 || lengths[b] > steps)
      throw std::invalid_argument(std::string(where) + ": lengths[" + std::to_string(b) +
                                  "] = " + std::to_string(lengths[b]) + " is outside [1, " +
                                  std::to_string(steps) + "]");
}

template struct ForwardWeights<float>;
template struct ForwardWeights<double>;

}  // namespace eigengru::detail
