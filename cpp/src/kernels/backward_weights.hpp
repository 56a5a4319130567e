// A layer-direction's weights packed for its backward's products, made by the training forward
// and kept in its cache: the backward then holds no copy of its own, and the weights it
// differentiates are those the forward ran with, whatever the caller does to its buffers.
#pragma once

#include "eigengru/weights.hpp"
#include "packed_matrix.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

template <typename Scalar>
struct BackwardWeights {
  PackedMatrix<Scalar> w_ih;  ///< W_ih (3H, I): dx = [da_r da_z da_n] W_ih
  PackedMatrix<Scalar>
      rz_or_all;           ///< W_hh (3H, H) with the reset after the product, else W_hr|W_hz
  PackedMatrix<Scalar> n;  ///< W_hn (H, H) with the reset before the product, else empty

  /// Packs w's weights with up to `threads` threads, reusing the memory of an earlier pack.
  void pack(const LayerWeights<Scalar>& w, int threads) {
    const Index H = w.hidden_size, I = w.input_size;
    w_ih.pack(w.weight_ih, 3 * H, I, I, 1, threads);
    if (w.reset_after) {
      rz_or_all.pack(w.weight_hh, 3 * H, H, H, 1, threads);
      n = PackedMatrix<Scalar>();
    } else {
      rz_or_all.pack(w.weight_hh, 2 * H, H, H, 1, threads);
      n.pack(w.weight_hh + 2 * H * H, H, H, H, 1, threads);
    }
  }

  /// Values stored, padding included.
  Index size() const { return w_ih.size() + rz_or_all.size() + n.size(); }
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
