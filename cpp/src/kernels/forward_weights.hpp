// One layer-direction's weights prepared for forward products: what the sequence forward builds
// once per call (once per part of the hidden units when they are split among threads), and
// Stream, StackStep and GRUCell once at construction.
#pragma once

#include <optional>

#include "eigengru/weights.hpp"
#include "gate_functions.hpp"
#include "matrix_types.hpp"
#include "packed_matrix.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// The weights of hidden units [first, first + units) (every unit by default): U = units below,
/// and the gate columns of the products are [r, z, n] of those units, U each.
template <typename Scalar>
struct ForwardWeights {
  Index input_size = 0;
  Index first = 0, units = 0;
  PackedMatrix<Scalar> w_ih_t;  ///< W_ihᵀ (I, 3U)
  PackedMatrix<Scalar> w_hh_t;  ///< reset_after: W_hhᵀ (H, 3U); else the r and z blocks (H, 2U)
  PackedMatrix<Scalar> w_hn_t;  ///< reset before the product: W_hnᵀ (H, U); else empty
  /// b_ih with every bias outside the reset gate folded in: b_hr and b_hz always, b_hn too when
  /// the reset comes before the product. Zero without biases.
  Vector<Scalar> input_bias;
  Vector<Scalar> bias_hn;                          ///< reset_after with biases: b_hn; else empty
  std::optional<GateFunctions<Scalar>> functions;  ///< none: sigmoid and tanh

  /// Packs and copies: nothing of w is referenced afterwards. unit_count < 0: up to the last.
  /// Large weights are packed by up to `threads` threads.
  explicit ForwardWeights(const LayerWeights<Scalar>& w, Index first_unit = 0,
                          Index unit_count = -1, int threads = 1);

  /// b_hn for the gate pass, or nullptr when there is none.
  const Scalar* bias_hn_or_null() const { return bias_hn.size() > 0 ? bias_hn.data() : nullptr; }
  /// The gate passes' functions (cell.hpp): nullptr for sigmoid and tanh.
  const GateFunctions<Scalar>* functions_or_null() const {
    return functions ? &*functions : nullptr;
  }
};

/// Whether w can be a layer with these sizes, formulation and functions: sizes, formulation and
/// functions equal and valid, weights present, biases both given or both absent.
template <typename Scalar>
bool matches_spec(const LayerWeights<Scalar>& w, Index input_size, Index hidden_size,
                  bool reset_after, const Nonlinearities& nonlinearities) {
  return w.input_size == input_size && w.hidden_size == hidden_size &&
         w.reset_after == reset_after && w.nonlinearities == nonlinearities &&
         nonlinearities.valid() && w.weight_ih != nullptr && w.weight_hh != nullptr &&
         (w.bias_ih == nullptr) == (w.bias_hh == nullptr);
}

/// Throws std::invalid_argument, prefixed with `where`, unless every lengths[b] is in
/// [1, steps] (nullptr passes).
void check_lengths(const char* where, const Index* lengths, Index batch, Index steps);

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
