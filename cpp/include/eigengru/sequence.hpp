// How one direction of a layer runs over a batch of sequences.
#pragma once

#include "eigengru/types.hpp"

namespace eigengru {

/// A batch of B sequences of up to T steps, and where a layer's output rows lie.
///
/// x is (T, B, I) and out (T, B, ·) row-major; row b holds lengths[b] valid steps (1..T), or T
/// when lengths is nullptr. Outputs past a row's length are zero and its final state is the
/// one after its own last valid step. A reverse run starts at each row's own last valid step and
/// ends at step 0, as PyTorch's packed sequences do.
struct Sequence {
  Index steps = 0;
  Index batch = 0;
  const Index* lengths = nullptr;  ///< B entries in [1, steps], or nullptr for all T steps
  bool reverse = false;            ///< run from the last valid step back to the first
  /// Distance, in elements, between consecutive rows (t, b) of out and grad_out; 0 means the
  /// layer's hidden size. A bidirectional layer writes its two halves of one (T, B, 2H) array.
  Index out_stride = 0;
  int threads = 0;  ///< 0: get_num_threads()
};

}  // namespace eigengru
