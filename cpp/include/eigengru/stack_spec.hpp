// The shape of a stack of GRU layers.
#pragma once

#include "eigengru/nonlinearities.hpp"
#include "eigengru/types.hpp"

namespace eigengru {

/// The shape of a stack: num_layers layers of hidden_size units, each run forward and, when
/// bidirectional, also in reverse, with the two directions' outputs side by side; or, with
/// `reverse`, each run in reverse only (ONNX's direction "reverse": a row's sequence runs from its
/// own last valid step to its first, and outputs stay in time order).
struct StackSpec {
  Index input_size = 0;
  Index hidden_size = 0;
  Index num_layers = 1;
  bool bidirectional = false;
  bool reset_after = true;
  double dropout = 0.0;  ///< probability of zeroing each input of layers 1.., in training only
  bool reverse = false;  ///< one direction, run backwards in time; not with bidirectional
  Nonlinearities nonlinearities;  ///< every layer's
  /// Per-sequence (variational) dropout, in training only: each layer-direction draws, for each
  /// sequence of the batch, one mask of its input and one of its state, kept for every step and
  /// shared by the three gates; the state's multiplies it where it enters the recurrent product
  /// (not in the update's z * h).
  double input_dropout = 0.0;
  double recurrent_dropout = 0.0;

  Index directions() const { return bidirectional ? 2 : 1; }
  /// The input size of layer l: input_size, then directions() * hidden_size.
  Index layer_input_size(Index l) const { return l == 0 ? input_size : directions() * hidden_size; }
};

}  // namespace eigengru
