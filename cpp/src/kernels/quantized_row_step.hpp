// One step of a single row (batch 1) of a quantized layer, reset_after, with the standard gates
// applied to the products' sums while they are still in registers: the quantized counterpart
// of row_step.hpp.
//
// At batch 1 the step's products are short (at 16 inputs and 64 units, 240 int8 dot-product
// instructions), so what surrounds them counts: calling a tiled product per matrix, storing its
// sums and reading them back for a separate gate pass. Here the hidden
// units go in groups of up to 3 panels (16 units each; with AVX2's 16 registers, each panel as 2
// halves, one int8 panel or up to 2 bfloat16 ones): a group's r, z and n sums are made over the
// whole depth (9, 6 or 12 chains), turned into floats, and taken through the gates at once, so
// that one group's gates overlap the next group's products.
//
// The sums are made and turned into floats as the tiled product makes them (quantized_dot.hpp:
// one chain per panel, over the depth in order, in the same blocks of the depth where the
// tiled product has them; int8 sums are exact in any order anyway) and
// the gates are cell.hpp's ResetAfterChunk: the fused step gives quantized_step's values bit for
// bit, which tests/cpp/test_quantized_row_step.cpp checks.
#pragma once

#include "quantized_matrix.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

struct QuantizedLayerWeights;  // quantized_layer.hpp, whose step calls this one

/// Whether quantized_row_step takes the layer: reset_after, the standard sigmoid and tanh, a
/// multiple of 16 units (every gate block starts on a panel), and a dot-product kernel for the
/// layer's precision (QuantizedPanels::dot_product()).
bool fits_quantized_row_step(const QuantizedLayerWeights& w);

/// quantized_step() of one row, for a layer that fits_quantized_row_step: h (H values) advanced
/// in place from the projected input gx (3H values, with input_bias) or, with `input` (the row
/// x quantized by w.w_ih), from x's product made here; `state` holds h quantized by w.w_hh.
void quantized_row_step(const QuantizedLayerWeights& w, const QuantizedRows* input, const float* gx,
                        const QuantizedRows& state, float* h) noexcept;

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
