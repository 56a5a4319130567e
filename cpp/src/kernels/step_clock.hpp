// Where each row of a batch is in time at each step of a run (reverse runs and unequal lengths),
// and the copies that follow from it.
#pragma once

#include <algorithm>

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// Where row b is at step s of a run: its time index, or -1 once past its length.
struct StepClock {
  const Index* lengths;  // nullptr: every row has `steps` steps
  Index steps;
  bool reverse;
  Index length(Index b) const { return lengths != nullptr ? lengths[b] : steps; }
  Index time(Index b, Index s) const {
    const Index len = length(b);
    if (s >= len) return -1;
    return reverse ? len - 1 - s : s;
  }
};

/// Copies the inputs of rows [b0, b0 + n) at steps [s, s + steps) into contiguous rows (row
/// (s' - s) * n + i of dst), zeros where a row is past its length.
template <typename Scalar>
void gather_inputs(const Scalar* x, Index batch, Index input_size, const StepClock& clock, Index b0,
                   Index n, Index s, Index steps, Scalar* dst) {
  for (Index r = 0; r < steps * n; ++r) {
    const Index t = clock.time(b0 + r % n, s + r / n);
    if (t >= 0)
      std::copy_n(x + (t * batch + b0 + r % n) * input_size, input_size, dst + r * input_size);
    else
      std::fill_n(dst + r * input_size, input_size, 0);
  }
}

/// Zeros the outputs (H values, rows ldo apart, row t * batch + b) of the time indices past
/// each row's length, which no step writes.
template <typename Scalar>
void zero_padded_outputs(const StepClock& clock, Index batch, Index H, Scalar* out, Index ldo) {
  if (clock.lengths == nullptr) return;
  for (Index b = 0; b < batch; ++b)
    for (Index t = clock.length(b); t < clock.steps; ++t)
      std::fill_n(out + (t * batch + b) * ldo, H, Scalar(0));
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
