// One GRU layer applied one time step at a time, forward and backward: torch.nn.GRUCell's
// computation, for step loops that train through themselves (reinforcement learning, sampling).
#pragma once

#include "eigengru/weights.hpp"
#include "forward_weights.hpp"
#include "kernel_set.hpp"
#include "matrix_types.hpp"
#include "packed_matrix.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

/// A layer's weights packed once for single steps over a few rows. forward() computes one step
/// and, for training, the step's gate records; backward() takes one step's records back to the
/// gradients of its inputs and parameters, so that a caller can backpropagate through any loop
/// of steps, last step first.
///
/// Results do not depend on the batch's other rows or on earlier calls: the same inputs give
/// the same numbers bit for bit. forward() and backward() allocate only when a batch is larger
/// than every batch before it. One GRUCell belongs to one thread at a time.
template <typename Scalar>
class GRUCell final : public eigengru::detail::GRUCellInterface<Scalar> {
 public:
  /// Copies and packs w. Throws std::invalid_argument for missing weights, sizes below 1, or
  /// one bias without the other.
  explicit GRUCell(const LayerWeights<Scalar>& w);

  Index input_size() const { return forward_.input_size; }
  Index hidden_size() const { return hidden_size_; }
  bool reset_after() const { return reset_after_; }
  bool has_bias() const { return has_bias_; }
  /// Values per batch row of a step's gate record.
  Index record_size() const { return 4 * hidden_size_; }

  /// h_next (B, H) from x (B, I) and h (B, H); h_next may be h. record: (B, record_size())
  /// for a later backward(), or nullptr.
  void forward(Index batch, const Scalar* x, const Scalar* h, Scalar* h_next,
               Scalar* record) override;

  /// The backward of one forward() that kept its record: x and h as that forward read them,
  /// grad_h_next = dL/dh_next (B, H). Writes dx (B, I) (nullptr: not wanted) and dh (B, H); adds
  /// the parameter gradients into g, or writes them when accumulate is false (null pointers of
  /// g are skipped). Overwrites the record with gate gradients: one backward per forward.
  void backward(Index batch, const Scalar* x, const Scalar* h, Scalar* record,
                const Scalar* grad_h_next, Scalar* dx, Scalar* dh, const LayerGradients<Scalar>& g,
                bool accumulate) override;

 private:
  void reserve(Index batch);

  Index hidden_size_;
  bool reset_after_, has_bias_;
  detail::ForwardWeights<Scalar> forward_;
  PackedMatrix<Scalar> w_ih_;  ///< W_ih (3H, I): dx = [da_r, da_z, da_n] W_ih
  PackedMatrix<Scalar> w_hh_;  ///< W_hh (3H, H); reset before: its r and z rows (2H, H)
  PackedMatrix<Scalar> w_hn_;  ///< reset before: W_hn (H, H), for dq = da_n W_hn; else empty
  RowMatrix<Scalar> gx_, gh_, records_, dq_;  // scratch, one row per batch row
  Vector<Scalar> product_scratch_;            // for the weight gradients' products
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET
