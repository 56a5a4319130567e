// The layer's inference forward with fewer rows than threads (a batch of one above all): the
// threads split the hidden units instead of the rows. Each part multiplies every row with the
// weights of its units only (a fraction of W_hh that can stay in its core's cache) and makes
// those units' gates and states. The recurrent product is split by depth as well: a part
// multiplies the state of its own units first, then each other part's as soon as that part has
// published it (PhaseCounters). With the reset before the product a step has two phases, since
// W_hn needs r * h of every unit.
#include <algorithm>
#include <vector>

#include "denormals.hpp"
#include "forward_step.hpp"
#include "layer_passes.hpp"
#include "phase_counters.hpp"
#include "step_clock.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {
namespace {

/// Units per part start on a multiple of this, so that every part's gate blocks start on a
/// vector of every kernel set.
constexpr Index kUnitBlock = 16;

template <typename Scalar>
class UnitsForward {
 public:
  UnitsForward(const LayerWeights<Scalar>& w, const Sequence& seq, int parts, const Scalar* x,
               const Scalar* h0, Scalar* out)
      : T_(seq.steps),
        B_(seq.batch),
        H_(w.hidden_size),
        I_(w.input_size),
        ldo_(seq.out_stride > 0 ? seq.out_stride : H_),
        clock_{seq.lengths, T_, seq.reverse},
        reset_after_(w.reset_after),
        x_(x),
        out_(out),
        parts_(parts),
        ahead_(std::clamp<Index>(48 / B_, 1, T_)),
        // done counts the phases each part has completed: per step its states (reset after
        // the product), or r * h of its units and then its states (reset before). A part reads
        // another part's units of a buffer only once that part has made them, and overwrites
        // its own only after waiting for every other part to be past the phase that read them,
        // so two state buffers and one r * h buffer suffice.
        phases_(w.reset_after ? 1 : 2),
        done_(parts) {
    // Everything is allocated here, before the parallel region.
    weights_.reserve(parts);
    for (int q = 0; q < parts; ++q) {
      const Slice units = share(H_, q, parts, kUnitBlock);
      const ForwardWeights<Scalar>& part = weights_.emplace_back(w, units.begin, units.size());
      const Index m = part.units;
      gx_.emplace_back(ahead_ * B_, 3 * m);
      gathered_.emplace_back(ahead_ * B_, I_);
      gh_.emplace_back(B_, 3 * m);
      records_.emplace_back(w.reset_after ? 0 : B_, 4 * m);
    }
    state_[0] = RowMatrix<Scalar>::Zero(B_, H_);
    state_[1] = RowMatrix<Scalar>::Zero(B_, H_);
    if (h0 != nullptr) state_[0] = Eigen::Map<const RowMatrix<Scalar>>(h0, B_, H_);
    reset_state_ = RowMatrix<Scalar>::Zero(w.reset_after ? 0 : B_, H_);
  }

  void run(Scalar* h_n) {
    if (out_ != nullptr) zero_padded_outputs(clock_, B_, H_, out_, ldo_);
#pragma omp parallel num_threads(parts_)
    {
      const FlushDenormals flush;
      // OpenMP may grant fewer threads than asked (inside another parallel region, say): then
      // a thread takes parts q, q + team, ... in turn; a part waits only for phases of the
      // step before, or of its own step that the thread has done already.
      const int team = omp_get_num_threads(), me = omp_get_thread_num();
      for (Index s = 0; s < T_; ++s) {
        for (int q = me; q < parts_; q += team) gates(q, s);
        if (!reset_after_)
          for (int q = me; q < parts_; q += team) candidate(q, s);
        if (out_ != nullptr)
          for (int q = me; q < parts_; q += team) outputs(q, s);
      }
    }
    if (h_n != nullptr) std::copy_n(state_[T_ % 2].data(), B_ * H_, h_n);
  }

 private:
  /// Part q's rows of step s, for forward_step's halves.
  StepRows<Scalar> step_rows(int q, Index s) {
    const Index u0 = weights_[q].first, m = weights_[q].units;
    return {B_,
            gx_[q].data() + (s % ahead_) * B_ * 3 * m,
            state_[s % 2].data() + u0,
            H_,
            state_[(s + 1) % 2].data() + u0,
            H_,
            reset_after_ ? nullptr : records_[q].data(),
            4 * m,
            gh_[q].data()};
  }

  /// C = a * packed over every part's units of the depth: part q's own first, then each other
  /// part's once that part has completed `phase`.
  void split_product(int q, const PackedMatrix<Scalar>& packed, const Scalar* a, Scalar* c,
                     Index ldc, Index phase, bool backwards) const {
    const Slice own{weights_[q].first, weights_[q].first + weights_[q].units};
    packed.multiply_depth(a, H_, B_, c, ldc, false, own.begin, own.end, backwards);
    for (int k = 1; k < parts_; ++k) {
      const int p = (q + k) % parts_;
      done_.wait(p, phase);
      packed.multiply_depth(a, H_, B_, c, ldc, true, weights_[p].first,
                            weights_[p].first + weights_[p].units, backwards);
    }
  }

  bool active(Index i, Index s) const { return clock_.time(i, s) >= 0; }

  /// The rows past their length keep their state, then the part publishes its states.
  void finish_states(int q, Index s) {
    const Index u0 = weights_[q].first, m = weights_[q].units;
    for (Index i = 0; i < B_; ++i)
      if (!active(i, s))
        std::copy_n(state_[s % 2].data() + i * H_ + u0, m,
                    state_[(s + 1) % 2].data() + i * H_ + u0);
    done_.publish(q, (s + 1) * phases_);
  }

  /// Part q's share of step s: its inputs' projection when due, then forward_step's first half
  /// (reset after the product: the whole step; before it: r, z and r * h, then published).
  void gates(int q, Index s) {
    const ForwardWeights<Scalar>& part = weights_[q];
    const Index m = part.units;
    if (s % ahead_ == 0) {  // the projection of the next `ahead` steps onto the part's units
      const Index chunk_rows = std::min(ahead_, T_ - s) * B_;
      gather_inputs(x_, B_, I_, clock_, 0, B_, s, chunk_rows / B_, gathered_[q].data());
      part.w_ih_t.project(gathered_[q].data(), I_, chunk_rows, gx_[q].data(), 3 * m,
                          part.input_bias.data());
    }
    const auto product = [&](const PackedMatrix<Scalar>& packed, const Scalar* a, Index, Scalar* c,
                             Index ldc) {
      split_product(q, packed, a - part.first, c, ldc, s * phases_, s % 2 == 1);
    };
    const StepRows<Scalar> rows = step_rows(q, s);
    step_gates(part, reset_after_, rows, product, [&](Index i) { return active(i, s); });
    if (reset_after_) {
      finish_states(q, s);
      return;
    }
    for (Index i = 0; i < B_; ++i)  // r * h of the part's units, for every part's W_hn product
      if (active(i, s))
        std::copy_n(rows.rec + i * 4 * m + 3 * m, m, reset_state_.data() + i * H_ + part.first);
    done_.publish(q, s * phases_ + 1);
  }

  /// Reset before the product: forward_step's second half, with W_hn over every part's r * h.
  void candidate(int q, Index s) {
    const ForwardWeights<Scalar>& part = weights_[q];
    const auto product = [&](const PackedMatrix<Scalar>& packed, const Scalar*, Index, Scalar* c,
                             Index ldc) {
      split_product(q, packed, reset_state_.data(), c, ldc, s * phases_ + 1, s % 2 == 1);
    };
    step_candidate(part, step_rows(q, s), product, [&](Index i) { return active(i, s); });
    finish_states(q, s);
  }

  void outputs(int q, Index s) {
    const Index u0 = weights_[q].first, m = weights_[q].units;
    const Scalar* h = state_[(s + 1) % 2].data();
    for (Index i = 0; i < B_; ++i) {
      const Index t = clock_.time(i, s);
      if (t >= 0) std::copy_n(h + i * H_ + u0, m, out_ + (t * B_ + i) * ldo_ + u0);
    }
  }

  const Index T_, B_, H_, I_, ldo_;
  const StepClock clock_;
  const bool reset_after_;
  const Scalar* x_;
  Scalar* out_;
  const int parts_;
  const Index ahead_, phases_;
  PhaseCounters done_;
  std::vector<ForwardWeights<Scalar>> weights_;  // part q: units [first, first + units)
  std::vector<RowMatrix<Scalar>> gx_, gathered_, gh_, records_;
  RowMatrix<Scalar> state_[2];
  RowMatrix<Scalar> reset_state_;  // r * h of every unit
};

}  // namespace

template <typename Scalar>
void LayerPasses<Scalar>::forward_units(const LayerWeights<Scalar>& w, const Sequence& seq,
                                        int threads, const Scalar* x, const Scalar* h0, Scalar* out,
                                        Scalar* h_n) {
  UnitsForward<Scalar>(w, seq, threads, x, h0, out).run(h_n);
}

template struct LayerPasses<float>;
template struct LayerPasses<double>;

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
