#include "forward_weights.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

template <typename Scalar>
ForwardWeights<Scalar>::ForwardWeights(const LayerWeights<Scalar>& w, Index first_unit,
                                       Index unit_count, int threads)
    : input_size(w.input_size),
      first(first_unit),
      units(unit_count < 0 ? w.hidden_size - first_unit : unit_count) {
  if (!w.nonlinearities.standard()) functions.emplace(w.nonlinearities);
  const Index H = w.hidden_size, I = w.input_size, m = units, G = 3 * m;
  // The rows of the three gate blocks that belong to units [first, first + m), stacked: the
  // source itself when that is every unit, else a gathered copy.
  std::vector<RowMatrix<Scalar>> gathered;
  auto gate_rows = [&](const Scalar* source, Index cols) -> const Scalar* {
    if (m == H) return source;
    RowMatrix<Scalar>& rows = gathered.emplace_back(G, cols);
    for (Index g = 0; g < 3; ++g)
      rows.middleRows(g * m, m) =
          Eigen::Map<const RowMatrix<Scalar>>(source + (g * H + first) * cols, m, cols);
    return rows.data();
  };
  w_ih_t.pack(gate_rows(w.weight_ih, I), I, G, 1, I, threads);  // B(k, j) = W(j, k)
  const Scalar* w_hh = gate_rows(w.weight_hh, H);
  if (w.reset_after) {
    w_hh_t.pack(w_hh, H, G, 1, H, threads);
  } else {  // r must be known before W_hn can be applied: two products
    w_hh_t.pack(w_hh, H, 2 * m, 1, H, threads);
    w_hn_t.pack(w_hh + 2 * m * H, H, m, 1, H, threads);
  }
  input_bias = Vector<Scalar>::Zero(G);
  if (w.has_bias()) {
    input_bias = Eigen::Map<const Vector<Scalar>>(gate_rows(w.bias_ih, 1), G);
    const Eigen::Map<const Vector<Scalar>> bias_hh(gate_rows(w.bias_hh, 1), G);
    const Index folded = w.reset_after ? 2 * m : G;
    input_bias.head(folded) += bias_hh.head(folded);
    if (w.reset_after) bias_hn = bias_hh.tail(m);
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

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
