// The layer's forward over a sequence with the batch's rows split among threads (inference and
// training), and the public forward functions, which choose between it and the split by units.
#include <algorithm>
#include <atomic>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "denormals.hpp"
#include "eigengru/path_counts.hpp"
#include "forward_step.hpp"
#include "layer.hpp"
#include "layer_passes.hpp"
#include "step_clock.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace detail {
namespace {

template <typename Scalar>
void check_arguments(const char* fn, const LayerWeights<Scalar>& w, const Sequence& seq,
                     const Scalar* x) {
  const Index steps = seq.steps, batch = seq.batch;
  const std::string where(fn);
  if (w.input_size < 1 || w.hidden_size < 1)
    throw std::invalid_argument(where + ": input_size and hidden_size must be positive, got " +
                                std::to_string(w.input_size) + " and " +
                                std::to_string(w.hidden_size));
  if (w.weight_ih == nullptr || w.weight_hh == nullptr)
    throw std::invalid_argument(where + ": weight_ih and weight_hh must not be null");
  if ((w.bias_ih == nullptr) != (w.bias_hh == nullptr))
    throw std::invalid_argument(where + ": bias_ih and bias_hh must both be given or both be null");
  if (!w.nonlinearities.valid())
    throw std::invalid_argument(where + ": nonlinearities are not valid (see Nonlinearities)");
  if (steps < 0 || batch < 0)
    throw std::invalid_argument(where + ": steps and batch must not be negative, got " +
                                std::to_string(steps) + " and " + std::to_string(batch));
  if (steps * batch > 0 && x == nullptr)
    throw std::invalid_argument(where + ": x must not be null");
  if (seq.out_stride != 0 && seq.out_stride < w.hidden_size)
    throw std::invalid_argument(where + ": out_stride must be 0 or at least hidden_size");
  check_lengths(fn, seq.lengths, batch, steps);
}

/// A training forward's gate records from this size on are written by non-temporal stores:
/// more than the caches keep for the backward, which reads them from memory either way.
constexpr Index kStreamedRecordBytes = Index{8} << 20;

/// One call of the forward by rows. Each step works on contiguous per-step buffers (the state,
/// the recurrent product, the gate records), so that the products see contiguous rows even when
/// rows are at different times (reverse runs, unequal lengths); a training forward then keeps
/// each row's gate record and starting state at its time index (`kept_*`, in the cache).
/// Everything is allocated before the time loop, nothing inside it. A recurrent dropout mask
/// (B, H) multiplies each row's state where the recurrent products read it.
template <typename Scalar>
class RowsForward {
 public:
  RowsForward(const LayerWeights<Scalar>& w, const Sequence& seq, int threads, const Index* lengths,
              const Scalar* x, const Scalar* h0, Scalar* out, Scalar* kept_gates,
              Scalar* kept_states, const Scalar* recurrent_mask = nullptr)
      : w_(w),
        T_(seq.steps),
        B_(seq.batch),
        H_(w.hidden_size),
        I_(w.input_size),
        ldo_(seq.out_stride > 0 ? seq.out_stride : H_),
        clock_{lengths, T_, seq.reverse},
        x_(x),
        out_(out),
        recurrent_mask_(recurrent_mask),
        kept_gates_(kept_gates),
        kept_states_(kept_states),
        // Without lengths all rows are at one time index at each step, so a thread's rows of a
        // step are contiguous in the cache: a training forward makes its records and states
        // there, with no copies, and an inference forward with an output makes each step's
        // states in the output (rows ldo apart) and reads them there at the next step.
        in_place_(kept_gates != nullptr && lengths == nullptr),
        into_out_(kept_gates == nullptr && out != nullptr && lengths == nullptr),
        threads_(row_threads(threads, B_)),
        // The input projection runs `ahead` steps ahead: enough rows for the product kernel to
        // be efficient even for a batch of one, few enough to stay in cache until the gates
        // read them.
        ahead_(std::clamp<Index>(48 / std::max<Index>(1, B_ / threads_), 1, T_ > 0 ? T_ : 1)),
        // Records beyond what the caches keep go past them (store_streaming()); a single row's
        // step (the fused step) writes its own.
        stream_records_(in_place_ && w.reset_after && B_ / threads_ >= 2 &&
                        T_ * B_ * 4 * H_ * static_cast<Index>(sizeof(Scalar)) >=
                            kStreamedRecordBytes),
        prepared_(w, 0, -1, threads_),
        state_{RowMatrix<Scalar>::Zero(B_, H_), RowMatrix<Scalar>(B_, H_)},
        records_(RowMatrix<Scalar>::Zero(B_, 4 * H_)) {
    if (stream_records_) eigengru::detail::count_path(Path::kStreamedRecords);
    if (h0 != nullptr) state_[0] = Eigen::Map<const RowMatrix<Scalar>>(h0, B_, H_);
    if (in_place_ && T_ > 0)  // the first step's state is h0, copied in
      std::copy_n(state_[0].data(), B_ * H_, kept_states_ + clock_.time(0, 0) * B_ * H_);
  }

  /// The time loop, then h_n and the padded outputs. Throws std::bad_alloc, having written
  /// nothing, when a thread's scratch cannot be allocated.
  void run(Scalar* h_n) {
    // Each thread allocates its own scratch rows (projected inputs, gathered inputs, the step's
    // product) at the start of the region, from its own heap arena and first touched by its own
    // core: one block shared out among the threads was slower on hosts that place the cores far
    // apart, even with a page between the threads' rows. A failed allocation is reported after
    // the region, before any output is written.
    std::atomic<bool> scratch_failed{false};
#pragma omp parallel num_threads(threads_)
    {
      const FlushDenormals flush;
      const Slice rows = my_share(B_);
      RowMatrix<Scalar> gx, gathered, gh, masked;
      try {
        gx.resize(ahead_ * rows.size(), 3 * H_);
        gathered.resize(ahead_ * rows.size(), I_);
        gh.resize(rows.size(), 3 * H_);
        masked.resize(recurrent_mask_ != nullptr ? rows.size() : 0, H_);
      } catch (...) {
        scratch_failed = true;
      }
#pragma omp barrier
      if (!scratch_failed && rows.size() > 0) thread_loop(rows, gx, gathered, gh, masked);
      if (stream_records_) finish_streaming_stores();
    }
    if (scratch_failed) throw std::bad_alloc();
    if (out_ != nullptr) zero_padded_outputs(clock_, B_, H_, out_, ldo_);
    if (h_n == nullptr) return;
    if (into_out_ && T_ > 0) {
      const Scalar* last = out_ + clock_.time(0, T_ - 1) * B_ * ldo_;
      for (Index b = 0; b < B_; ++b) std::copy_n(last + b * ldo_, H_, h_n + b * H_);
    } else {
      std::copy_n(state_[T_ % 2].data(), B_ * H_, h_n);
    }
  }

 private:
  /// The steps of one thread's rows.
  void thread_loop(Slice rows, RowMatrix<Scalar>& gx, RowMatrix<Scalar>& gathered,
                   RowMatrix<Scalar>& gh, RowMatrix<Scalar>& masked) {
    const Index b0 = rows.begin, n = rows.size(), G = 3 * H_;
    for (Index s = 0; s < T_; ++s) {
      if (s % ahead_ == 0) {  // gx = x W_ihᵀ + bias for the next `ahead` steps' rows
        const Index chunk_rows = std::min(ahead_, T_ - s) * n;
        const Scalar* inputs = gathered.data();
        if (ahead_ == 1 && clock_.lengths == nullptr)  // one step's rows: contiguous in x
          inputs = x_ + (clock_.time(b0, s) * B_ + b0) * I_;
        else
          gather_inputs(x_, B_, I_, clock_, b0, n, s, chunk_rows / n, gathered.data());
        prepared_.w_ih_t.project(inputs, I_, chunk_rows, gx.data(), G, prepared_.input_bias.data());
      }
      StepRows<Scalar> step = step_rows(s, b0, n, gx.data() + (s % ahead_) * n * G, gh.data());
      if (recurrent_mask_ != nullptr) {
        const ConstMatrixMap<Scalar> h(step.h, n, H_, Eigen::OuterStride<>(step.ldh));
        masked = h.array() *
                 Eigen::Map<const RowMatrix<Scalar>>(recurrent_mask_ + b0 * H_, n, H_).array();
        step.masked = masked.data();
        step.ldm = H_;
      }
      // Alternating panel order, step by step: see PackedMatrix::multiply.
      forward_step(prepared_, w_.reset_after, step, s % 2 == 1,
                   [&](Index i) { return clock_.time(b0 + i, s) >= 0; });
      if (!into_out_) keep_rows(s, b0, step);
    }
  }

  /// Where rows [b0, b0 + n) of step s read and write: the state buffers and this step's
  /// records, or the cache (in place), or the output (into_out).
  StepRows<Scalar> step_rows(Index s, Index b0, Index n, const Scalar* gx, Scalar* gh) {
    const Index H = H_, R = 4 * H_;
    StepRows<Scalar> rows{n,
                          gx,
                          state_[s % 2].data() + b0 * H,
                          H,
                          state_[(s + 1) % 2].data() + b0 * H,
                          H,
                          records_.data() + b0 * R,
                          R,
                          gh};
    if (in_place_) {
      const Index at = clock_.time(b0, s) * B_ + b0;
      rows.h = kept_states_ + at * H;
      rows.rec = kept_gates_ + at * R;
      rows.stream_records = stream_records_;
      if (s + 1 < T_) rows.h_next = kept_states_ + (clock_.time(b0, s + 1) * B_ + b0) * H;
    } else if (into_out_) {
      rows.h_next = out_ + (clock_.time(b0, s) * B_ + b0) * ldo_;
      rows.ldn = ldo_;
      if (s > 0) {
        rows.h = out_ + (clock_.time(b0, s - 1) * B_ + b0) * ldo_;
        rows.ldh = ldo_;
      }
    }
    if (kept_gates_ == nullptr && w_.reset_after) rows.rec = nullptr;  // nothing reads them
    return rows;
  }

  /// After step s, from the per-step buffers: the rows past their length keep their state; the
  /// others' states go to the output and, training, their records and starting states to the
  /// cache.
  void keep_rows(Index s, Index b0, const StepRows<Scalar>& rows) {
    const Index H = H_, R = 4 * H_;
    for (Index i = 0; i < rows.n; ++i) {
      const Index b = b0 + i, t = clock_.time(b, s);
      const Scalar* h = rows.h + i * H;
      Scalar* h_next = rows.h_next + i * H;
      if (t < 0) {
        std::copy_n(h, H, h_next);
        continue;
      }
      if (out_ != nullptr) std::copy_n(h_next, H, out_ + (t * B_ + b) * ldo_);
      if (kept_gates_ != nullptr && !in_place_) {
        std::copy_n(rows.rec + i * R, R, kept_gates_ + (t * B_ + b) * R);
        std::copy_n(h, H, kept_states_ + (t * B_ + b) * H);
      }
    }
  }

  const LayerWeights<Scalar>& w_;
  const Index T_, B_, H_, I_, ldo_;
  const StepClock clock_;
  const Scalar* x_;
  Scalar* out_;
  const Scalar* recurrent_mask_;  // (B, H), or nullptr
  Scalar* kept_gates_;  // training: the cache's records and starting states, by time index
  Scalar* kept_states_;
  const bool in_place_, into_out_;
  const int threads_;
  const Index ahead_;
  const bool stream_records_;
  const ForwardWeights<Scalar> prepared_;
  RowMatrix<Scalar> state_[2];
  RowMatrix<Scalar> records_;  // this step's records, when not in place
};

}  // namespace

template <typename Scalar>
void LayerPasses<Scalar>::forward_rows(const LayerWeights<Scalar>& w, const Sequence& seq,
                                       int threads, const Scalar* x, const Scalar* h0, Scalar* out,
                                       Scalar* h_n, TrainingCache<Scalar>* cache,
                                       const Scalar* recurrent_mask) {
  const Index T = seq.steps, B = seq.batch, H = w.hidden_size, I = w.input_size;
  if (cache == nullptr) {
    RowsForward<Scalar>(w, seq, threads, seq.lengths, x, h0, out, nullptr, nullptr).run(h_n);
    return;
  }
  // A training forward reuses the cache's memory; whatever forward it held is replaced. A
  // failure leaves the cache not ready().
  TrainingCache<Scalar>& c = *cache;
  c.ready_ = false;
  if (seq.lengths != nullptr)
    c.lengths_.assign(seq.lengths, seq.lengths + B);
  else
    c.lengths_.clear();
  c.gates_.resize(T * B, 4 * H);
  c.prev_states_.resize(T * B, H);
  c.inputs_ = Eigen::Map<const RowMatrix<Scalar>>(x, T * B, I);
  const Index* lengths = seq.lengths != nullptr ? c.lengths_.data() : nullptr;
  // Padded steps are never visited: their records and states are zeroed here, so that
  // backward's whole-sequence products add nothing for them.
  const StepClock clock{lengths, T, seq.reverse};
  for (Index b = 0; b < B && lengths != nullptr; ++b)
    for (Index t = clock.length(b); t < T; ++t) {
      c.gates_.row(t * B + b).setZero();
      c.prev_states_.row(t * B + b).setZero();
    }
  RowsForward<Scalar>(w, seq, threads, lengths, x, h0, out, c.gates_.data(), c.prev_states_.data(),
                      recurrent_mask)
      .run(h_n);
  // Packed once the forward's own packed weights are gone: a first call's memory peaks lower.
  c.weights_.pack(w, threads);
  if (recurrent_mask != nullptr) {  // what W_hh multiplied, for backward's weight gradients
    c.recurrent_mask_ = Eigen::Map<const RowMatrix<Scalar>>(recurrent_mask, B, H);
    c.masked_states_.resize(T * B, H);
    for (Index t = 0; t < T; ++t)
      c.masked_states_.middleRows(t * B, B) =
          c.prev_states_.middleRows(t * B, B).cwiseProduct(c.recurrent_mask_);
  } else {
    c.recurrent_mask_.resize(0, H);
    c.masked_states_.resize(0, H);
  }
  c.steps_ = T;
  c.batch_ = B;
  c.input_size_ = I;
  c.hidden_size_ = H;
  c.out_stride_ = seq.out_stride > 0 ? seq.out_stride : H;
  c.threads_ = seq.threads;  // backward reads the library's count anew when 0
  c.reset_after_ = w.reset_after;
  c.nonlinearities_ = w.nonlinearities;
  c.has_bias_ = w.has_bias();
  c.reverse_ = seq.reverse;
  c.ready_ = true;
}

}  // namespace detail

template <typename Scalar>
void forward(const LayerWeights<Scalar>& weights, const Sequence& seq, const Scalar* x,
             const Scalar* h0, Scalar* out, Scalar* h_n) {
  detail::check_arguments("forward", weights, seq, x);
  const int threads = detail::call_threads(seq.threads);
  const int unit_threads = detail::unit_threads(threads, seq, weights.hidden_size);
  if (unit_threads > 1) {
    eigengru::detail::count_path(Path::kForwardByUnits);
    detail::LayerPasses<Scalar>::forward_units(weights, seq, unit_threads, x, h0, out, h_n);
  } else {
    detail::LayerPasses<Scalar>::forward_rows(weights, seq, threads, x, h0, out, h_n, nullptr);
  }
}

template <typename Scalar>
void forward_training(const LayerWeights<Scalar>& weights, const Sequence& seq, const Scalar* x,
                      const Scalar* h0, Scalar* out, Scalar* h_n, TrainingCache<Scalar>& cache,
                      const Scalar* recurrent_mask) {
  detail::check_arguments("forward_training", weights, seq, x);
  detail::LayerPasses<Scalar>::forward_rows(weights, seq, detail::call_threads(seq.threads), x, h0,
                                            out, h_n, &cache, recurrent_mask);
}

#define EIGENGRU_INSTANTIATE(Scalar)                                                         \
  template struct detail::LayerPasses<Scalar>;                                               \
  template void forward<Scalar>(const LayerWeights<Scalar>&, const Sequence&, const Scalar*, \
                                const Scalar*, Scalar*, Scalar*);                            \
  template void forward_training<Scalar>(const LayerWeights<Scalar>&, const Sequence&,       \
                                         const Scalar*, const Scalar*, Scalar*, Scalar*,     \
                                         TrainingCache<Scalar>&, const Scalar*);
EIGENGRU_INSTANTIATE(float)
EIGENGRU_INSTANTIATE(double)
#undef EIGENGRU_INSTANTIATE

}  // namespace eigengru::EIGENGRU_KERNEL_SET
