// The layer's backward pass (backpropagation through time) from a training forward's cache, and
// the public backward function. The gate passes and their derivation are in cell.hpp.
#include <algorithm>
#include <optional>
#include <stdexcept>

#include "cell.hpp"
#include "denormals.hpp"
#include "eigengru/path_counts.hpp"
#include "layer.hpp"
#include "layer_passes.hpp"
#include "micro_kernel.hpp"
#include "packed_matrix.hpp"
#include "step_clock.hpp"
#include "transposed_product.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace detail {
namespace {

/// The products that follow from a run of consecutive rows of gate gradients D (rows of the
/// records, [da_r, da_z, da_n, m'], cell.hpp): each pre-activation a = W u + b contributes
/// dL/du = da W and dL/dW = daᵀ u, so
///   dx    = [da_r da_z da_n] W_ih,         dW_ih += [da_r da_z da_n]ᵀ x,
///   dW_hr|dW_hz += [da_r da_z]ᵀ h,
///   dW_hn += m'ᵀ h (reset_after: m' = dL/d(W_hn h + b_hn))  or  da_nᵀ (r * h) (reset before,
///   the fourth block then holds r * h),
/// h being the state as W_hh read it (times the dropout mask with recurrent dropout).
template <typename Scalar>
struct GradientProducts {
  const Scalar* gates;
  const Scalar* inputs;
  const Scalar* states;
  Index I, H;
  bool reset_after;
  const PackedMatrix<Scalar>* w_ih;  ///< W_ih packed, or nullptr: no dx
  Scalar* grad_x;
  bool accumulate_grad_x;

  /// scratch: transposed_product_scratch(max(I, H), threads) elements.
  void run(Index first, Index count, Scalar* dw_ih, Scalar* dw_hh, int threads,
           Scalar* scratch) const {
    const Scalar* d = gates + first * 4 * H;
    if (w_ih != nullptr)
      w_ih->multiply_parallel(d, 4 * H, count, grad_x + first * I, I, accumulate_grad_x, threads);
    add_weight_gradients(first, count, dw_ih, dw_hh, 0, 1, threads, scratch);
  }

  /// Part `part` of `parts` of run(first, count, ..., 1, ...): a slice of the rows of dx, and of
  /// each weight gradient's, cut on the kernel's row blocks. The parts together make what run()
  /// makes, bit for bit: each row by the same operations.
  void run_part(Index first, Index count, Scalar* dw_ih, Scalar* dw_hh, int part, int parts,
                Scalar* scratch) const {
    const Slice rows = share(count, part, parts, kRowBlock);
    if (w_ih != nullptr && rows.size() > 0)
      w_ih->multiply(gates + (first + rows.begin) * 4 * H, 4 * H, rows.size(),
                     grad_x + (first + rows.begin) * I, I, accumulate_grad_x);
    add_weight_gradients(first, count, dw_ih, dw_hh, part, parts, 1, scratch);
  }

 private:
  /// Part `part` of `parts` of each weight gradient's rows += over the gate gradients of rows
  /// [first, first + count), with `threads` threads.
  void add_weight_gradients(Index first, Index count, Scalar* dw_ih, Scalar* dw_hh, int part,
                            int parts, int threads, Scalar* scratch) const {
    const Index R = 4 * H;
    const Scalar* d = gates + first * R;
    const Scalar* h = states + first * H;
    // C (m x n) += the columns [column, column + m) of d, transposed, times b: a slice of C's rows
    auto add = [&](Index column, Index m, const Scalar* b, Index ldb, Index n, Scalar* c) {
      const Slice mine = share(m, part, parts, kRowBlock);
      if (mine.size() > 0)
        add_transposed_product(d + column + mine.begin, R, mine.size(), b, ldb, n, count,
                               c + mine.begin * n, n, threads, scratch);
    };
    if (dw_ih != nullptr) add(0, 3 * H, inputs + first * I, I, I, dw_ih);
    if (dw_hh == nullptr) return;
    add(0, 2 * H, h, H, H, dw_hh);
    if (reset_after)  // dW_hn += m'ᵀ h
      add(3 * H, H, h, H, H, dw_hh + 2 * H * H);
    else  // dW_hn += da_nᵀ (r * h), r * h held in the fourth block
      add(2 * H, H, d + 3 * H, R, H, dw_hh + 2 * H * H);
  }
};

/// One backward call. dh, dL/dh carried backwards in time, starts as grad_h_n; each step s
/// (last to first) adds the output's gradient, turns the step's records into gate gradients
/// (cell.hpp) and completes dh_{t-1} with the products by W_hh.
///
/// dx and the weight gradients are products over the gate gradients of all rows and steps.
/// Without lengths, a step's rows are contiguous, so they are made every few steps (a share)
/// from the rows just made, while they are in cache: on one thread, from its rows; on several,
/// each thread from its own rows into partial weight gradients of its own, if those fit in L2
/// (each share reads and writes them whole) and its slice of a step is thick enough to multiply
/// efficiently; else the threads wait for each other at the end of each share, and each makes a
/// slice of the rows of dx and of every weight gradient from all the share's rows, the products
/// one thread would make from the same gate gradients, bit for bit. With lengths, a row's steps lie
/// apart in time, and one pass after the loop makes them.
template <typename Scalar>
class BackwardPass {
 public:
  BackwardPass(const TrainingCache<Scalar>& c, Scalar* gates, int threads, const Scalar* grad_out,
               const Scalar* grad_h_n, Scalar* grad_x, const LayerGradients<Scalar>& grads,
               bool accumulate_grad_x, const BackwardWeights<Scalar>& weights, const Scalar* inputs,
               const Scalar* states, const Index* lengths, Index out_stride,
               const Scalar* recurrent_mask, const Scalar* masked_states)
      : T_(c.steps()),
        B_(c.batch()),
        H_(c.hidden_size()),
        I_(c.input_size()),
        ldo_(out_stride),
        reset_after_(c.reset_after()),
        has_bias_(c.has_bias()),
        functions_(c.nonlinearities().standard()
                       ? std::nullopt
                       : std::optional<GateFunctions<Scalar>>(c.nonlinearities())),
        clock_{lengths, T_, c.reverse()},
        threads_(threads),
        loop_threads_(row_threads(threads, B_)),
        gates_(gates),
        states_(states),
        product_states_(recurrent_mask != nullptr ? masked_states : states),
        recurrent_mask_(recurrent_mask),
        grad_out_(grad_out),
        grads_(grads),
        recurrent_(weights),
        dh_(RowMatrix<Scalar>::Zero(B_, H_)),
        dgh_(B_, 3 * H_),
        dq_(reset_after_ ? 0 : B_, H_),
        dh_product_(recurrent_mask != nullptr ? B_ : 0, H_),
        bias_levels_(sum_levels(T_ * B_)),
        bias_sums_(
            RowMatrix<Scalar>::Zero(has_bias_ ? loop_threads_ * (1 + bias_levels_) : 1, 4 * H_)) {
    const Index G = 3 * H_;
    if (grad_h_n != nullptr) dh_ = Eigen::Map<const RowMatrix<Scalar>>(grad_h_n, B_, H_);
    products_ = {gates,
                 inputs,
                 product_states_,
                 I_,
                 H_,
                 reset_after_,
                 grad_x != nullptr ? &weights.w_ih : nullptr,
                 grad_x,
                 accumulate_grad_x};
    const bool small_weights = G * (I_ + H_) * static_cast<Index>(sizeof(Scalar)) <= 512 * 1024;
    partials_ =
        lengths == nullptr && loop_threads_ > 1 && small_weights && B_ / loop_threads_ >= 64;
    // Shared shares pay for their waits only while a share's gate gradients are still in cache.
    const Index share_bytes =
        batch_share_steps() * B_ * 4 * H_ * static_cast<Index>(sizeof(Scalar));
    shared_ = lengths == nullptr && loop_threads_ > 1 && !partials_ && share_bytes <= 1024 * 1024;
    in_loop_ = lengths == nullptr && (loop_threads_ == 1 || partials_ || shared_);
    eigengru::detail::count_path(!in_loop_   ? Path::kBackwardProductsAfter
                                 : partials_ ? Path::kBackwardPartials
                                 : shared_   ? Path::kBackwardSharedProducts
                                             : Path::kBackwardProductsInLoop);
    thread_scratch_ = transposed_product_scratch<Scalar>(std::max(I_, H_), 1);
    // threads_: as many as the loop or the products after it use
    product_scratch_.resize(std::max(1, threads_) * thread_scratch_);
    partial_ih_.setZero(partials_ && grads.weight_ih != nullptr ? loop_threads_ * G : 0, I_);
    partial_hh_.setZero(partials_ && grads.weight_hh != nullptr ? loop_threads_ * G : 0, H_);
  }

  void run(Scalar* grad_h0) {
#pragma omp parallel num_threads(loop_threads_)
    {
      const FlushDenormals flush;
      const Slice rows = my_share(B_);
      // Sharing, every thread takes part in every share's wait, rows or none.
      if (rows.size() > 0 || shared_) thread_loop(rows, omp_get_thread_num());
    }
    if (grad_h0 != nullptr) std::copy_n(dh_.data(), B_ * H_, grad_h0);
    const FlushDenormals flush;  // on this thread; the products' threads set their own
    if (!in_loop_)
      products_.run(0, T_ * B_, grads_.weight_ih, grads_.weight_hh, row_threads(threads_, T_ * B_),
                    product_scratch_.data());
    add_partials();
    add_bias_gradients();
  }

 private:
  /// The steps of one thread's rows, last to first.
  void thread_loop(Slice rows, int me) {
    const Index b0 = rows.begin, n = rows.size(), G = 3 * H_;
    Scalar* my_dw_ih = grads_.weight_ih;
    Scalar* my_dw_hh = grads_.weight_hh;
    if (partials_) {
      my_dw_ih = my_dw_ih != nullptr ? partial_ih_.data() + me * G * I_ : nullptr;
      my_dw_hh = my_dw_hh != nullptr ? partial_hh_.data() + me * G * H_ : nullptr;
    }
    const Index share_steps =
        partials_ ? std::max<Index>(1, share_rows() / n) : batch_share_steps();
    Index share_end = T_;  // steps [s, share_end) are made and not yet multiplied
    Scalar* scratch = product_scratch_.data() + me * thread_scratch_;
    BiasSums sums{has_bias_ ? bias_sums_.data() + me * (1 + bias_levels_) * 4 * H_ : nullptr, 0, 0};
    for (Index s = T_ - 1; s >= 0; --s) {
      step(s, b0, n);
      if (has_bias_) add_to_sums(s, b0, n, sums);
      if (!in_loop_ || (share_end - s < share_steps && s > 0)) continue;
      const Index t_first = std::min(clock_.time(b0, s), clock_.time(b0, share_end - 1));
      const Index t_count = share_end - s;
      if (shared_) {  // once every thread has made the share's rows
#pragma omp barrier
        products_.run_part(t_first * B_, t_count * B_, my_dw_ih, my_dw_hh, me,
                           omp_get_num_threads(), scratch);
      } else if (n == B_) {  // the whole batch: one run of rows
        products_.run(t_first * B_, t_count * B_, my_dw_ih, my_dw_hh, 1, scratch);
      } else {
        for (Index t = t_first; t < t_first + t_count; ++t)
          products_.run(t * B_ + b0, n, my_dw_ih, my_dw_hh, 1, scratch);
      }
      share_end = s;
    }
    if (has_bias_) finish_sums(sums);
  }

  /// Rows per share of the products: enough depth for them to be efficient and for partials'
  /// reads and writes to be small beside the multiply-adds.
  Index share_rows() const { return std::max<Index>(128, 3 * H_ * (I_ + H_) / 2048); }

  /// Steps per share when a share is made from the whole batch's rows.
  Index batch_share_steps() const {
    return std::max<Index>(1, share_rows() / std::max<Index>(1, B_));
  }

  /// Step s of rows [b0, b0 + n): their gate gradients (over the records) and dh_{t-1}.
  void step(Index s, Index b0, Index n) {
    const Index H = H_, G = 3 * H, R = 4 * H;
    Scalar* dh = dh_.data() + b0 * H;
    Scalar* dgh = dgh_.data() + b0 * G;
    const GateFunctions<Scalar>* f = functions_ ? &*functions_ : nullptr;
    for (Index i = 0; i < n; ++i) {
      const Index b = b0 + i, t = clock_.time(b, s);
      if (t < 0) {  // a padded step: the gradient passes through, the products add nothing
        std::fill_n(dgh + i * G, G, 0);
        continue;
      }
      if (grad_out_ != nullptr) {
        const Scalar* go = grad_out_ + (t * B_ + b) * ldo_;
        for (Index k = 0; k < H; ++k) dh[i * H + k] += go[k];
      }
      const Index at = t * B_ + b;
      if (reset_after_)
        backward_reset_after(H, states_ + at * H, gates_ + at * R, dh + i * H, dgh + i * G, f);
      else
        backward_update_candidate(H, states_ + at * H, gates_ + at * R, dh + i * H, dgh + i * G, f);
    }
    const bool backwards = s % 2 == 1;  // see PackedMatrix::multiply
    // What flows back through the recurrent products goes to dh, or with recurrent dropout to
    // dL/d(h * mask) first, then through the mask to dh.
    Scalar* dp = dh;
    if (recurrent_mask_ != nullptr) {
      dp = dh_product_.data() + b0 * H;
      std::fill_n(dp, n * H, Scalar(0));
    }
    if (!reset_after_) {
      Scalar* dq = dq_.data() + b0 * H;
      recurrent_.n.multiply(dgh + 2 * H, G, n, dq, H, false, 1, nullptr, backwards);  // da_n W_hn
      for (Index i = 0; i < n; ++i) {
        const Index b = b0 + i, t = clock_.time(b, s);
        if (t < 0) continue;
        const Index at = t * B_ + b;
        backward_reset(H, product_states_ + at * H, dq + i * H, gates_ + at * R, dp + i * H,
                       dgh + i * G, f);
      }
    }
    // dh_{t-1} += [da_r da_z dm] W_hh (reset_after), or [da_r da_z] W_hr|W_hz (before)
    recurrent_.rz_or_all.multiply(dgh, G, n, dp, H, true, 1, nullptr, backwards);
    if (recurrent_mask_ != nullptr)
      for (Index i = 0; i < n; ++i)
        ArrayMap<Scalar>(dh + i * H, H) += ConstArrayMap<Scalar>(dp + i * H, H) *
                                           ConstArrayMap<Scalar>(recurrent_mask_ + (b0 + i) * H, H);
  }

  /// A thread's running column sums of the gate gradients, summed pairwise as long sums must
  /// be for their rounding errors to stay small: rows go into a block sum, kDepthBlock of
  /// them at a time (as the products sum long depths), and blocks into a binary counter of
  /// partial sums, level k holding the sum of 2^k blocks while bit k of `blocks` is set.
  struct BiasSums {
    Scalar* rows;    // 4H values each: the block sum, then bias_levels_ levels
    Index in_block;  // rows in the block sum
    Index blocks;    // blocks ended
  };

  /// The levels a thread's sums need for at most `rows` rows.
  static Index sum_levels(Index rows) {
    Index levels = 1;
    for (Index blocks = rows / kDepthBlock + 1; blocks > 0; blocks >>= 1) ++levels;
    return levels;
  }

  /// Moves the block sum into the levels, carrying as a binary counter does, and starts a
  /// new block.
  void end_block(BiasSums& sums) const {
    const Index R = 4 * H_;
    ArrayMap<Scalar> carry(sums.rows, R);
    Index k = 0;
    for (; (sums.blocks >> k) & 1; ++k)
      carry = ArrayMap<Scalar>(sums.rows + (1 + k) * R, R) + carry;
    ArrayMap<Scalar>(sums.rows + (1 + k) * R, R) = carry;
    carry.setZero();
    ++sums.blocks;
    sums.in_block = 0;
  }

  /// Ends the last block and leaves the thread's total in the block sum: the levels added
  /// from the largest, the earliest rows' sum, down.
  void finish_sums(BiasSums& sums) const {
    const Index R = 4 * H_;
    if (sums.in_block > 0) end_block(sums);
    ArrayMap<Scalar> total(sums.rows, R);
    for (Index k = bias_levels_ - 1; k >= 0; --k)
      if ((sums.blocks >> k) & 1) total += ArrayMap<Scalar>(sums.rows + (1 + k) * R, R);
  }

  /// sums += the gate gradients [da_r, da_z, da_n, m'] of the step's rows that are in time,
  /// while they are in cache: the biases' gradients are their column sums.
  void add_to_sums(Index s, Index b0, Index n, BiasSums& sums) const {
    const Index R = 4 * H_;
    ArrayMap<Scalar> block(sums.rows, R);
    for (Index i = 0; i < n; ++i) {
      const Index t = clock_.time(b0 + i, s);
      if (t < 0) continue;
      block += ConstArrayMap<Scalar>(gates_ + (t * B_ + b0 + i) * R, R);
      if (++sums.in_block == kDepthBlock) end_block(sums);
    }
  }

  /// The threads' partial weight gradients, added in thread order.
  void add_partials() const {
    const Index G = 3 * H_;
    for (int t = 0; t < loop_threads_ && partials_; ++t) {
      if (grads_.weight_ih != nullptr)
        Eigen::Map<RowMatrix<Scalar>>(grads_.weight_ih, G, I_) += partial_ih_.middleRows(t * G, G);
      if (grads_.weight_hh != nullptr)
        Eigen::Map<RowMatrix<Scalar>>(grads_.weight_hh, G, H_) += partial_hh_.middleRows(t * G, G);
    }
  }

  /// The biases' gradients from the threads' column sums (added in thread order) of
  /// [da_r, da_z, da_n, m']. b_ih enters a_r, a_z, a_n: db_ih = [Σda_r, Σda_z, Σda_n]. b_hr and
  /// b_hz enter a_r, a_z alike. b_hn enters W_hn h + b_hn, whose gradient is m' with the reset
  /// after the product (db_hn = Σm', block 3), and a_n itself with the reset before it
  /// (db_hn = Σda_n, block 2).
  void add_bias_gradients() const {
    if (!has_bias_) return;
    const Index H = H_, G = 3 * H;
    Vector<Scalar> sums = Vector<Scalar>::Zero(4 * H);
    for (int t = 0; t < loop_threads_; ++t)
      sums += bias_sums_.row(t * (1 + bias_levels_)).transpose();
    if (grads_.bias_ih != nullptr) Eigen::Map<Vector<Scalar>>(grads_.bias_ih, G) += sums.head(G);
    if (grads_.bias_hh != nullptr) {
      Eigen::Map<Vector<Scalar>> db(grads_.bias_hh, G);
      db.head(2 * H) += sums.head(2 * H);
      db.tail(H) += sums.segment(reset_after_ ? 3 * H : 2 * H, H);
    }
  }

  const Index T_, B_, H_, I_, ldo_;
  const bool reset_after_, has_bias_;
  const std::optional<GateFunctions<Scalar>> functions_;  // none: sigmoid and tanh
  const StepClock clock_;
  const int threads_, loop_threads_;
  Scalar* gates_;  // the records, overwritten with gate gradients
  const Scalar* states_;
  const Scalar* product_states_;  // the states as W_hh read them
  const Scalar* recurrent_mask_;  // (B, H), or nullptr
  const Scalar* grad_out_;
  const LayerGradients<Scalar>& grads_;
  const BackwardWeights<Scalar>& recurrent_;  // the cache's
  GradientProducts<Scalar> products_{};
  bool in_loop_ = false, partials_ = false, shared_ = false;
  RowMatrix<Scalar> dh_;
  RowMatrix<Scalar> dgh_;         // the left factor of the product with W_hh
  RowMatrix<Scalar> dq_;          // dL/d(r * h), reset before the product
  RowMatrix<Scalar> dh_product_;  // dL/d(h * mask), with recurrent dropout
  const Index bias_levels_;       // per thread (BiasSums)
  RowMatrix<Scalar> bias_sums_;   // per thread: a block sum, then its levels (BiasSums)
  RowMatrix<Scalar> partial_ih_, partial_hh_;
  Index thread_scratch_ = 0;        // one thread's share of product_scratch_
  Vector<Scalar> product_scratch_;  // per thread: B's rows packed for the weight gradients
};

}  // namespace

template <typename Scalar>
void LayerPasses<Scalar>::backward(TrainingCache<Scalar>& c, const Scalar* grad_out,
                                   const Scalar* grad_h_n, Scalar* grad_x, Scalar* grad_h0,
                                   const LayerGradients<Scalar>& grads, bool accumulate_grad_x,
                                   bool keep) {
  if (!c.ready_)
    throw std::logic_error(
        "backward: no training forward to differentiate (run forward_training first; each "
        "backward consumes the forward it differentiates)");
  const int threads = call_threads(c.threads_);
  Scalar* gates = c.gates_.data();  // overwritten with gate gradients, unless kept
  if (keep) {
    c.kept_copy_ = c.gates_;
    gates = c.kept_copy_.data();
  }
  BackwardPass<Scalar>(c, gates, threads, grad_out, grad_h_n, grad_x, grads, accumulate_grad_x,
                       c.weights_, c.inputs_.data(), c.prev_states_.data(),
                       c.lengths_.empty() ? nullptr : c.lengths_.data(), c.out_stride_,
                       c.recurrent_mask(), c.masked_states_.data())
      .run(grad_h0);
  if (!keep) c.ready_ = false;  // consumed; the memory stays for the next forward_training
}

template struct LayerPasses<float>;
template struct LayerPasses<double>;

}  // namespace detail

template <typename Scalar>
void backward(TrainingCache<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
              Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>& grads,
              bool accumulate_grad_x, bool keep_cache) {
  detail::LayerPasses<Scalar>::backward(cache, grad_out, grad_h_n, grad_x, grad_h0, grads,
                                        accumulate_grad_x, keep_cache);
}

template void backward<float>(TrainingCache<float>&, const float*, const float*, float*, float*,
                              const LayerGradients<float>&, bool, bool);
template void backward<double>(TrainingCache<double>&, const double*, const double*, double*,
                               double*, const LayerGradients<double>&, bool, bool);

}  // namespace eigengru::EIGENGRU_KERNEL_SET
