// One forward time step of a layer-direction over a few rows: the recurrent product, the gates
// and the candidate. The one place this sequence is written: the sequence forward (by rows and
// by hidden units), Stream and GRUCell all run it.
#pragma once

#include <algorithm>

#include "cell.hpp"
#include "forward_weights.hpp"
#include "row_step.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// The n rows of one step of a layer whose weights cover U hidden units (ForwardWeights::units),
/// G = 3U: row i's projected inputs at gx + i * G; its previous state at h + i * ldh and its new
/// one at h_next + i * ldn (both at the weights' first unit); its gate record (4U values, read
/// by a backward) at rec + i * ldr, or rec nullptr (inference with the reset after the product;
/// the reset before it needs the record as scratch); gh: (n, G) scratch for the products' sums.
/// With recurrent dropout, the state as the recurrent products read it, h times the rows'
/// masks, at masked + i * ldm (nullptr: h itself). stream_records: the reset after the
/// product, several rows, and records that nothing reads before the time loop ends, written by
/// non-temporal stores (store_streaming()).
template <typename Scalar>
struct StepRows {
  Index n;
  const Scalar* gx;
  const Scalar* h;
  Index ldh;
  Scalar* h_next;
  Index ldn;
  Scalar* rec;
  Index ldr;
  Scalar* gh;
  const Scalar* masked = nullptr;
  Index ldm = 0;
  bool stream_records = false;

  /// What the recurrent products read: row i at product_input() + i * product_stride().
  const Scalar* product_input() const { return masked != nullptr ? masked : h; }
  Index product_stride() const { return masked != nullptr ? ldm : ldh; }
};

/// Every row takes part in the step.
struct AllRows {
  bool operator()(Index) const { return true; }
};

/// The step's first half. product(packed, a, lda, c, ldc) makes C = A · packed for the step's
/// rows (A's rows lda apart): the state times W_hhᵀ, or W_hr|W_hzᵀ with the reset before the
/// product. Then the gates of the rows for which active(i) holds: with the reset after the
/// product, the whole step (h_next made); before it, r, z and r * h (in the record).
template <typename Scalar, typename Product, typename Active>
void step_gates(const ForwardWeights<Scalar>& w, bool reset_after, const StepRows<Scalar>& rows,
                const Product& product, const Active& active) {
  const Index U = w.units, G = 3 * U;
  product(w.w_hh_t, rows.product_input(), rows.product_stride(), rows.gh, G);
  for (Index i = 0; i < rows.n; ++i) {
    if (!active(i)) continue;
    const Scalar* gx = rows.gx + i * G;
    const Scalar* gh = rows.gh + i * G;
    Scalar* rec = rows.rec == nullptr ? nullptr : rows.rec + i * rows.ldr;
    if (reset_after)
      forward_reset_after<Scalar>(U, gx, gh, w.bias_hn_or_null(), rows.h + i * rows.ldh, rec,
                                  rows.h_next + i * rows.ldn, w.functions_or_null(),
                                  rows.stream_records);
    else  // r times the state W_hn will read
      forward_gates_rz(U, gx, gh, rows.product_input() + i * rows.product_stride(), rec,
                       w.functions_or_null());
  }
}

/// The step's second half, with the reset before the product only: product(W_hnᵀ, r * h, ...)
/// (from the records: rec + 3U, rows ldr apart), then the candidate and h_next of the active rows.
template <typename Scalar, typename Product, typename Active>
void step_candidate(const ForwardWeights<Scalar>& w, const StepRows<Scalar>& rows,
                    const Product& product, const Active& active) {
  const Index U = w.units, G = 3 * U;
  product(w.w_hn_t, rows.rec + 3 * U, rows.ldr, rows.gh + 2 * U, G);
  for (Index i = 0; i < rows.n; ++i)
    if (active(i))
      forward_candidate(U, rows.gx + i * G, rows.gh + i * G + 2 * U, rows.h + i * rows.ldh,
                        rows.rec + i * rows.ldr, rows.h_next + i * rows.ldn, w.functions_or_null());
}

/// A whole step with the products on the calling thread, in panel order `backwards` (see
/// PackedMatrix::multiply). A single row with the reset after the product and the standard
/// functions takes the fused step (row_step.hpp), which gives the same values. h_next may be h.
template <typename Scalar, typename Active = AllRows>
void forward_step(const ForwardWeights<Scalar>& w, bool reset_after, const StepRows<Scalar>& rows,
                  bool backwards, const Active& active = {}) {
  const Index U = w.units;
  if (rows.n == 1 && reset_after && !w.functions && rows.masked == nullptr &&
      fits_row_step(w.w_hh_t, U)) {
    if (!active(0)) return;
    // The fused step reads all of h before it writes: an in-place step makes its state in gh.
    Scalar* target = rows.h_next == rows.h ? rows.gh : rows.h_next;
    forward_row_reset_after<Scalar>(w.w_hh_t, U, rows.gx, w.bias_hn_or_null(), rows.h, rows.rec,
                                    target, backwards);
    if (target != rows.h_next) std::copy_n(target, U, rows.h_next);
    return;
  }
  const auto product = [&](const PackedMatrix<Scalar>& packed, const Scalar* a, Index lda,
                           Scalar* c, Index ldc) {
    packed.multiply(a, lda, rows.n, c, ldc, false, 1, nullptr, backwards);
  };
  step_gates(w, reset_after, rows, product, active);
  if (!reset_after) step_candidate(w, rows, product, active);
}

/// A step from the layer's inputs: x (n, I) projected, then forward_step over n contiguous rows
/// (h and h_next rows U apart; records 4U apart). gx and gh: (n, 3U) scratch.
template <typename Scalar>
void layer_step(const ForwardWeights<Scalar>& w, bool reset_after, Index n, const Scalar* x,
                const Scalar* h, Scalar* h_next, Scalar* rec, Scalar* gx, Scalar* gh,
                bool backwards) noexcept {
  const Index U = w.units;
  w.w_ih_t.project(x, w.input_size, n, gx, 3 * U, w.input_bias.data());
  forward_step(w, reset_after, StepRows<Scalar>{n, gx, h, U, h_next, U, rec, 4 * U, gh}, backwards);
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
