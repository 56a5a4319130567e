#include "quantized_layer.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

QuantizedLayerWeights::QuantizedLayerWeights(const QuantizedLayer& layer)
    : input_size(layer.input_size),
      hidden_size(layer.hidden_size),
      reset_after(layer.reset_after),
      w_ih(layer.weight_ih, 0, 3 * layer.hidden_size),
      w_hh(layer.weight_hh, 0, (layer.reset_after ? 3 : 2) * layer.hidden_size) {
  const Index H = hidden_size, G = 3 * H;
  if (!layer.nonlinearities.standard()) functions.emplace(layer.nonlinearities);
  if (!reset_after) w_hn = QuantizedPanels(layer.weight_hh, 2 * H, H);
  row_step = fits_quantized_row_step(*this);
  input_bias.assign(G, 0.0f);
  if (!layer.has_bias()) return;
  const Index folded = reset_after ? 2 * H : G;
  for (Index j = 0; j < G; ++j)
    input_bias[j] = layer.bias_ih[j] + (j < folded ? layer.bias_hh[j] : 0.0f);
  if (reset_after) bias_hn.assign(layer.bias_hh.begin() + 2 * H, layer.bias_hh.end());
}

QuantizedStepScratch::QuantizedStepScratch(const QuantizedLayerWeights& w, Index rows,
                                           Index input_rows)
    : gh(RowMatrix<float>::Zero(rows, 3 * w.hidden_size)),
      records(RowMatrix<float>::Zero(w.reset_after ? 0 : rows, 4 * w.hidden_size)) {
  w.w_ih.reserve(input, input_rows);
  w.w_hh.reserve(state, rows);
  if (!w.reset_after) w.w_hn.reserve(state, rows);  // the same depth, H
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
