// One time step of one layer-direction over a few rows, from packed weights: the step that
// Stream runs for each layer and GRUCell runs as its forward.
#pragma once

#include <algorithm>

#include "cell.hpp"
#include "forward_weights.hpp"
#include "row_step.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// h_next (B, H) from x (B, I) and h (B, H); h_next may be h. rec (B, 4H) receives the gate
/// records that a backward reads, or is nullptr (inference, reset_after only: the reset-before
/// step needs it as scratch). gx and gh are (B, 3H) scratch. backwards: the panel order of the
/// products (see PackedMatrix::multiply).
template <typename Scalar>
inline void layer_step(const ForwardWeights<Scalar>& layer, Index H, bool reset_after, Index B,
                       const Scalar* x, const Scalar* h, Scalar* h_next, Scalar* rec, Scalar* gx,
                       Scalar* gh, bool backwards) noexcept {
  const Index G = 3 * H, R = 4 * H;
  layer.w_ih_t.project(x, layer.input_size, B, gx, G, layer.input_bias.data());
  const Scalar* bias_hn = layer.bias_hn_or_null();
  if (B == 1 && reset_after && fits_row_step(layer.w_hh_t, H)) {
    // The fused step (row_step.hpp) reads all of h before it writes: the new state goes to gh,
    // then over h_next, which may be h.
    forward_row_reset_after<Scalar>(layer.w_hh_t, H, gx, bias_hn, h, rec, gh, backwards);
    std::copy_n(gh, H, h_next);
    return;
  }
  layer.w_hh_t.multiply(h, H, B, gh, G, false, 1, nullptr, backwards);
  for (Index b = 0; b < B; ++b) {
    if (reset_after)
      forward_reset_after<Scalar>(H, gx + b * G, gh + b * G, bias_hn, h + b * H,
                                  rec == nullptr ? nullptr : rec + b * R, h_next + b * H);
    else
      forward_gates_rz(H, gx + b * G, gh + b * G, h + b * H, rec + b * R);
  }
  if (!reset_after) {
    layer.w_hn_t.multiply(rec + 3 * H, R, B, gh + 2 * H, G, false, 1, nullptr, backwards);
    for (Index b = 0; b < B; ++b)
      forward_candidate(H, gx + b * G, gh + b * G + 2 * H, h + b * H, rec + b * R,
                        h_next + b * H);
  }
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
