// One layer-direction of a quantized model prepared for products, and its time step: the
// float model's step (forward_step.hpp) with quantized products and the same gate passes.
#pragma once

#include <optional>
#include <vector>

#include "cell.hpp"
#include "eigengru/quantized.hpp"
#include "matrix_types.hpp"
#include "quantized_matrix.hpp"
#include "quantized_row_step.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// A QuantizedLayer's matrices as panels, with the biases folded as ForwardWeights folds them.
struct QuantizedLayerWeights {
  Index input_size = 0, hidden_size = 0;
  bool reset_after = true;
  QuantizedPanels w_ih;  ///< W_ih (3H rows)
  QuantizedPanels w_hh;  ///< reset_after: W_hh (3H rows); else its r and z rows (2H)
  QuantizedPanels w_hn;  ///< reset before the product: W_hn (H rows); else empty
  /// b_ih with b_hr and b_hz folded in, and b_hn too when the reset comes before the product;
  /// zero without biases.
  std::vector<float> input_bias;
  std::vector<float> bias_hn;  ///< reset_after with biases: b_hn; else empty
  std::optional<GateFunctions<float>> functions;
  /// Whether a single row's step takes the fused quantized_row_step (quantized_row_step.hpp).
  bool row_step = false;

  explicit QuantizedLayerWeights(const QuantizedLayer& layer);

  const float* bias_hn_or_null() const { return bias_hn.empty() ? nullptr : bias_hn.data(); }
  const GateFunctions<float>* functions_or_null() const {
    return functions ? &*functions : nullptr;
  }
};

/// Scratch for the steps of up to `rows` rows of one layer: sized once, reused by every step.
struct QuantizedStepScratch {
  QuantizedRows input, state;
  RowMatrix<float> gh, records;  // (rows, 3H); (rows, 4H) with the reset before the product

  QuantizedStepScratch(const QuantizedLayerWeights& w, Index rows, Index input_rows);
};

/// One step of n contiguous rows: gx (n, 3H), the projected inputs with input_bias; h (n, H),
/// advanced in place for the rows i with active(i) (the others' results are not kept).
template <typename Active>
void quantized_step(const QuantizedLayerWeights& w, Index n, const float* gx, float* h,
                    QuantizedStepScratch& s, const Active& active) noexcept {
  const Index H = w.hidden_size, G = 3 * H;
  float* gh = s.gh.data();
  w.w_hh.quantize(h, H, n, s.state);
  if (n == 1 && w.row_step) {
    if (active(0)) quantized_row_step(w, nullptr, gx, s.state, h);
    return;
  }
  w.w_hh.multiply(s.state, n, gh, G, nullptr);
  for (Index i = 0; i < n; ++i) {
    if (!active(i)) continue;
    if (w.reset_after)
      forward_reset_after<float>(H, gx + i * G, gh + i * G, w.bias_hn_or_null(), h + i * H, nullptr,
                                 h + i * H, w.functions_or_null());
    else  // r, z and r * h into the record
      forward_gates_rz<float>(H, gx + i * G, gh + i * G, h + i * H, s.records.data() + i * 4 * H,
                              w.functions_or_null());
  }
  if (w.reset_after) return;
  w.w_hn.quantize(s.records.data() + 3 * H, 4 * H, n, s.state);
  w.w_hn.multiply(s.state, n, gh + 2 * H, G, nullptr);
  for (Index i = 0; i < n; ++i)
    if (active(i))
      forward_candidate<float>(H, gx + i * G, gh + i * G + 2 * H, h + i * H,
                               s.records.data() + i * 4 * H, h + i * H, w.functions_or_null());
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
