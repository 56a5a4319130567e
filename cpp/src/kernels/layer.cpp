#include "layer.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cell.hpp"
#include "denormals.hpp"
#include "forward_weights.hpp"
#include "packed_matrix.hpp"
#include "eigengru/path_counts.hpp"
#include "eigengru/threads.hpp"
#include "phase_counters.hpp"
#include "row_step.hpp"
#include "transposed_product.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace detail {
namespace {

/// The rows [begin, end) of the batch that the calling OpenMP thread owns for the whole sequence.
struct RowSlice {
  Index begin, end;
  Index size() const { return end - begin; }
};

RowSlice my_rows(Index batch) {
  const Index t = omp_get_thread_num(), n = omp_get_num_threads();
  return {batch * t / n, batch * (t + 1) / n};
}

int wanted_threads(const Sequence& seq) { return seq.threads > 0 ? seq.threads : get_num_threads(); }

int threads_for(const Sequence& seq, Index batch) {
  return static_cast<int>(std::clamp<Index>(batch, 1, wanted_threads(seq)));
}

/// Threads for an inference forward split by hidden units rather than rows: when the batch has
/// fewer rows than there are threads, at least 32 units a thread, and no more threads than
/// processors, since they wait for each other every step (else 1: split by rows).
int unit_threads_for(const Sequence& seq, Index batch, Index hidden_size) {
  const Index wanted = std::min<Index>(wanted_threads(seq), omp_get_num_procs());
  if (batch >= wanted || seq.steps == 0 || batch == 0) return 1;
  return static_cast<int>(std::clamp<Index>(hidden_size / 32, 1, wanted));
}

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
  if (steps < 0 || batch < 0)
    throw std::invalid_argument(where + ": steps and batch must not be negative, got " +
                                std::to_string(steps) + " and " + std::to_string(batch));
  if (steps * batch > 0 && x == nullptr) throw std::invalid_argument(where + ": x must not be null");
  if (seq.out_stride != 0 && seq.out_stride < w.hidden_size)
    throw std::invalid_argument(where + ": out_stride must be 0 or at least hidden_size");
  check_lengths(fn, seq.lengths, batch, steps);
}

/// W_hh packed for backward's per-step products with the gate gradients: W_hh itself, as one
/// block (reset_after) or as the r|z block and the n block (reset before the product).
template <typename Scalar>
struct BackwardRecurrentWeights {
  PackedMatrix<Scalar> rz_or_all;
  PackedMatrix<Scalar> n;

  BackwardRecurrentWeights(const Scalar* w_hh, Index H, bool reset_after) {
    if (reset_after) {
      rz_or_all.pack(w_hh, 3 * H, H, H, 1);
    } else {
      rz_or_all.pack(w_hh, 2 * H, H, H, 1);
      n.pack(w_hh + 2 * H * H, H, H, H, 1);
    }
  }
};

/// The products that follow from a run of consecutive rows of gate gradients D (rows of the
/// records, [da_r, da_z, da_n, m']): dx = [da_r da_z da_n] W_ih for those rows, and the weight
/// gradients' shares dW_ih += [da_r da_z da_n]ᵀ x and dW_hh += [da_r da_z]ᵀ h, with the candidate
/// rows of dW_hh from m' (reset_after: dmᵀ h) or from da_n and m = r * h (reset before).
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

  void run(Index first, Index count, Scalar* dw_ih, Scalar* dw_hh, int threads) const {
    const Index G = 3 * H, R = 4 * H;
    const Scalar* d = gates + first * R;
    if (w_ih != nullptr)
      w_ih->multiply_parallel(d, R, count, grad_x + first * I, I, accumulate_grad_x, threads);
    if (dw_ih != nullptr)
      add_transposed_product(d, R, G, inputs + first * I, I, I, count, dw_ih, I, threads);
    if (dw_hh != nullptr) {
      const Scalar* h = states + first * H;
      add_transposed_product(d, R, 2 * H, h, H, H, count, dw_hh, H, threads);
      if (reset_after)
        add_transposed_product(d + 3 * H, R, H, h, H, H, count, dw_hh + 2 * H * H, H, threads);
      else
        add_transposed_product(d + 2 * H, R, H, d + 3 * H, R, H, count, dw_hh + 2 * H * H, H,
                               threads);
    }
  }
};

}  // namespace

/// Where row b is at step s of a run: its time index, or -1 once past its length.
struct StepClock {
  const Index* lengths;  // nullptr: every row has T steps
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
void gather_inputs(const Scalar* x, Index batch, Index input_size, const StepClock& clock,
                   Index b0, Index n, Index s, Index steps, Scalar* dst) {
  for (Index r = 0; r < steps * n; ++r) {
    const Index t = clock.time(b0 + r % n, s + r / n);
    if (t >= 0)
      std::copy_n(x + (t * batch + b0 + r % n) * input_size, input_size, dst + r * input_size);
    else
      std::fill_n(dst + r * input_size, input_size, 0);
  }
}

template <typename Scalar>
struct LayerPasses {
  /// The forward recurrence over steps s = 0..T-1. Each step works on contiguous per-step
  /// buffers (the state, the recurrent product, the gate records), so that the products see
  /// contiguous rows even when rows are at different times (reverse runs, unequal lengths);
  /// with a cache, each row's gate record and starting state are then kept at its time index.
  static void forward(const LayerWeights<Scalar>& w, const Sequence& seq, const Scalar* x,
                      const Scalar* h0, Scalar* out, Scalar* h_n, TrainingCache<Scalar>* cache) {
    if (cache == nullptr) {
      const int unit_threads = unit_threads_for(seq, seq.batch, w.hidden_size);
      if (unit_threads > 1) {
        eigengru::detail::count_path(Path::kForwardByUnits);
        return forward_by_units(w, seq, x, h0, out, h_n, unit_threads);
      }
    }
    const Index T = seq.steps, B = seq.batch;
    const Index H = w.hidden_size, I = w.input_size, G = 3 * H, R = 4 * H;
    const Index ldo = seq.out_stride > 0 ? seq.out_stride : H;
    const bool training = cache != nullptr;
    std::vector<Index> lengths;
    if (seq.lengths != nullptr) lengths.assign(seq.lengths, seq.lengths + B);
    const StepClock clock{seq.lengths != nullptr ? lengths.data() : nullptr, T, seq.reverse};

    // Everything is allocated here or at the start of the time loop's region, before the loop
    // (nothing is allocated inside it). A failure leaves the caller's buffers untouched and the
    // cache not ready().
    const ForwardWeights<Scalar> prepared(w);
    RowMatrix<Scalar> state[2] = {RowMatrix<Scalar>::Zero(B, H), RowMatrix<Scalar>(B, H)};
    if (h0 != nullptr) state[0] = Eigen::Map<const RowMatrix<Scalar>>(h0, B, H);
    RowMatrix<Scalar> gates = RowMatrix<Scalar>::Zero(B, R);  // this step's records
    // The input projection runs a few steps ahead, in chunks of `ahead` steps, enough rows for
    // the product kernel to be efficient even for a batch of one, and few enough to stay in
    // cache until the gates read them. A chunk's inputs are gathered into contiguous rows.
    const int threads = threads_for(seq, B);
    const Index ahead = std::clamp<Index>(48 / std::max<Index>(1, B / threads), 1, T > 0 ? T : 1);
    Scalar* kept_gates = nullptr;   // training: the cache's records and starting states, by time
    Scalar* kept_states = nullptr;
    if (training) {  // reuses the cache's memory; whatever forward it held is replaced
      cache->ready_ = false;
      cache->gates_.resize(T * B, R);
      cache->prev_states_.resize(T * B, H);
      cache->inputs_ = Eigen::Map<const RowMatrix<Scalar>>(x, T * B, I);
      cache->weight_ih_ = Eigen::Map<const RowMatrix<Scalar>>(w.weight_ih, G, I);
      cache->weight_hh_ = Eigen::Map<const RowMatrix<Scalar>>(w.weight_hh, G, H);
      // Padded steps are never visited: their records and states are zeroed here, so that
      // backward's whole-sequence products add nothing for them.
      for (Index b = 0; b < B && seq.lengths != nullptr; ++b)
        for (Index t = clock.length(b); t < T; ++t) {
          cache->gates_.row(t * B + b).setZero();
          cache->prev_states_.row(t * B + b).setZero();
        }
      kept_gates = cache->gates_.data();
      kept_states = cache->prev_states_.data();
    }
    // Without lengths all rows are at one time index at each step, so a thread's rows of a step
    // are contiguous in the cache: a training forward then makes its records and states there,
    // with no copies; the first step's state is h0, copied in.
    const bool in_place = training && seq.lengths == nullptr;
    if (in_place && T > 0)
      std::copy_n(state[0].data(), B * H, kept_states + clock.time(0, 0) * B * H);
    // Likewise an inference forward without lengths makes each step's states in the output
    // (rows ldo apart) and reads them there at the next step: no state buffers, no copies.
    const bool into_out = !training && out != nullptr && seq.lengths == nullptr;

    // Each thread allocates its own scratch rows (projected inputs, gathered inputs, the step's
    // product) at the start of the region: in one block with the other threads', the wide
    // shape's 2-thread inference ran 15% slower whenever this VM's two cores were far apart (a
    // cache-line round trip of 400-500 ns instead of 100), and a page of padding between the
    // threads' rows did not help. An allocation that fails is reported after the region, before
    // any output is written.
    std::atomic<bool> scratch_failed{false};
#pragma omp parallel num_threads(threads)
    {
      const FlushDenormals flush;
      const RowSlice rows = my_rows(B);
      RowMatrix<Scalar> gx, gathered, gh;
      try {
        gx.resize(ahead * rows.size(), G);
        gathered.resize(ahead * rows.size(), I);
        gh.resize(rows.size(), G);
      } catch (...) {
        scratch_failed = true;
      }
#pragma omp barrier
      const Index b0 = rows.begin, n = scratch_failed ? 0 : rows.size();  // 0: skip the loop
      Scalar* gx_chunk = gx.data();  // row (s - s0) * n + i
      Scalar* x_chunk = gathered.data();
      Scalar* ghs = gh.data();
      // A single row takes the fused step where it can (row_step.hpp).
      const bool row_step = n == 1 && w.reset_after && fits_row_step(prepared.w_hh_t, H);
      for (Index s = 0; s < T && n > 0; ++s) {
        const Scalar* hp = state[s % 2].data() + b0 * H;  // row i at hp + i * ldp
        Scalar* hn = state[(s + 1) % 2].data() + b0 * H;  // row i at hn + i * ldn
        Index ldp = H, ldn = H;
        Scalar* recs = gates.data() + b0 * R;
        if (in_place) {
          const Index at = clock.time(b0, s) * B + b0;
          hp = kept_states + at * H;
          recs = kept_gates + at * R;
          if (s + 1 < T) hn = kept_states + (clock.time(b0, s + 1) * B + b0) * H;
        } else if (into_out) {
          hn = out + (clock.time(b0, s) * B + b0) * ldo;
          ldn = ldo;
          if (s > 0) {
            hp = out + (clock.time(b0, s - 1) * B + b0) * ldo;
            ldp = ldo;
          }
        }
        auto active = [&](Index i) { return clock.time(b0 + i, s) >= 0; };

        if (s % ahead == 0) {  // gx = x W_ihᵀ + bias for the next `ahead` steps' rows
          const Index chunk_rows = std::min(ahead, T - s) * n;
          const Scalar* inputs = x_chunk;
          if (ahead == 1 && seq.lengths == nullptr)  // one step's rows: contiguous in x
            inputs = x + (clock.time(b0, s) * B + b0) * I;
          else
            gather_inputs(x, B, I, clock, b0, n, s, chunk_rows / n, x_chunk);
          prepared.w_ih_t.project(inputs, I, chunk_rows, gx_chunk, G, prepared.input_bias.data());
        }
        const Scalar* gxs = gx_chunk + (s % ahead) * n * G;

        const bool backwards = s % 2 == 1;  // see PackedMatrix::multiply
        if (row_step) {
          if (active(0))
            forward_row_reset_after(prepared.w_hh_t, H, gxs, prepared.bias_hn_or_null(), hp,
                                    training ? recs : nullptr, hn, backwards);
        } else if (w.reset_after) {
          prepared.w_hh_t.multiply(hp, ldp, n, ghs, G, false, 1, nullptr, backwards);
          for (Index i = 0; i < n; ++i)
            if (active(i))
              forward_reset_after<Scalar>(H, gxs + i * G, ghs + i * G, prepared.bias_hn_or_null(),
                                  hp + i * ldp, training ? recs + i * R : nullptr, hn + i * ldn);
        } else {
          prepared.w_hh_t.multiply(hp, ldp, n, ghs, G, false, 1, nullptr, backwards);
          for (Index i = 0; i < n; ++i)
            if (active(i))
              forward_gates_rz(H, gxs + i * G, ghs + i * G, hp + i * ldp, recs + i * R);
          prepared.w_hn_t.multiply(recs + 3 * H, R, n, ghs + 2 * H, G, false, 1, nullptr,
                                   backwards);  // W_hn (r * h)
          for (Index i = 0; i < n; ++i)
            if (active(i))
              forward_candidate(H, gxs + i * G, ghs + i * G + 2 * H, hp + i * ldp, recs + i * R,
                                hn + i * ldn);
        }
        for (Index i = 0; i < n && !into_out; ++i) {
          const Index b = b0 + i, t = clock.time(b, s);
          if (t < 0) {  // past this row's length: its state stays
            std::copy(hp + i * H, hp + (i + 1) * H, hn + i * H);
            continue;
          }
          if (out != nullptr) std::copy(hn + i * H, hn + (i + 1) * H, out + (t * B + b) * ldo);
          if (training && !in_place) {
            std::copy(recs + i * R, recs + (i + 1) * R, kept_gates + (t * B + b) * R);
            std::copy(hp + i * H, hp + (i + 1) * H, kept_states + (t * B + b) * H);
          }
        }
      }
    }

    if (scratch_failed) throw std::bad_alloc();
    if (out != nullptr && seq.lengths != nullptr)  // past a row's length the output is zero
      for (Index b = 0; b < B; ++b)
        for (Index t = clock.length(b); t < T; ++t) std::fill_n(out + (t * B + b) * ldo, H, 0);
    if (h_n != nullptr && into_out && T > 0) {
      const Scalar* last = out + clock.time(0, T - 1) * B * ldo;
      for (Index b = 0; b < B; ++b) std::copy_n(last + b * ldo, H, h_n + b * H);
    } else if (h_n != nullptr) {
      std::copy_n(state[T % 2].data(), B * H, h_n);
    }
    if (!training) return;

    TrainingCache<Scalar>& c = *cache;
    c.lengths_.swap(lengths);
    c.steps_ = T;
    c.batch_ = B;
    c.input_size_ = I;
    c.hidden_size_ = H;
    c.out_stride_ = ldo;
    c.threads_ = seq.threads;
    c.reset_after_ = w.reset_after;
    c.has_bias_ = w.has_bias();
    c.reverse_ = seq.reverse;
    c.ready_ = true;
  }

  /// Inference with fewer rows than threads (a batch of one above all): the threads split the
  /// hidden units instead of the rows. Each part multiplies every row with the weights of its
  /// units only (a fraction of W_hh that can stay in its core's cache) and makes those units'
  /// gates and states. The recurrent product is split by depth as well: a part multiplies the
  /// state of its own units first, then each other part's as soon as that part has published
  /// it (PhaseCounters). With the reset before the product a step has two phases, since W_hn
  /// needs r * h of every unit.
  static void forward_by_units(const LayerWeights<Scalar>& w, const Sequence& seq,
                               const Scalar* x, const Scalar* h0, Scalar* out, Scalar* h_n,
                               int threads) {
    const Index T = seq.steps, B = seq.batch, H = w.hidden_size, I = w.input_size;
    const Index ldo = seq.out_stride > 0 ? seq.out_stride : H;
    std::vector<Index> lengths;
    if (seq.lengths != nullptr) lengths.assign(seq.lengths, seq.lengths + B);
    const StepClock clock{seq.lengths != nullptr ? lengths.data() : nullptr, T, seq.reverse};

    // Everything is allocated here, before the parallel region.
    std::vector<ForwardWeights<Scalar>> parts;  // part q: units [first, first + units)
    std::vector<RowMatrix<Scalar>> gx(threads), gathered(threads), gh(threads), recs(threads);
    const Index ahead = std::clamp<Index>(48 / B, 1, T);
    parts.reserve(threads);
    for (int q = 0; q < threads; ++q) {
      const Index first = H * q / threads / 16 * 16;
      const Index last = q + 1 == threads ? H : H * (q + 1) / threads / 16 * 16;
      const Index m = last - first;
      parts.emplace_back(w, first, m);
      gx[q].resize(ahead * B, 3 * m);
      gathered[q].resize(ahead * B, I);
      gh[q].resize(B, 3 * m);
      recs[q].resize(w.reset_after ? 0 : B, 4 * m);
    }
    RowMatrix<Scalar> state[2] = {RowMatrix<Scalar>::Zero(B, H), RowMatrix<Scalar>::Zero(B, H)};
    if (h0 != nullptr) state[0] = Eigen::Map<const RowMatrix<Scalar>>(h0, B, H);
    RowMatrix<Scalar> reset_state = RowMatrix<Scalar>::Zero(w.reset_after ? 0 : B, H);  // r * h
    if (out != nullptr && seq.lengths != nullptr)
      for (Index b = 0; b < B; ++b)
        for (Index t = clock.length(b); t < T; ++t) std::fill_n(out + (t * B + b) * ldo, H, 0);
    // done counts the phases each part has completed: per step its states (reset after the
    // product), or r * h of its units and then its states (reset before). A part reads another
    // part's units of a buffer only once that part has made them, and overwrites its own only
    // after waiting for every other part to be past the phase that read them, so two state
    // buffers and one r * h buffer suffice.
    const Index phases = w.reset_after ? 1 : 2;
    PhaseCounters done(threads);

    // C = a * packed over every part's units: part q's own first, then each other part's
    // once that part has completed `phase`.
    auto split_product = [&](int q, const PackedMatrix<Scalar>& packed, const Scalar* a,
                             Scalar* c, Index phase, bool backwards) {
      const Index ldc = 3 * parts[q].units;
      packed.multiply_depth(a, H, B, c, ldc, false, parts[q].first,
                            parts[q].first + parts[q].units, backwards);
      for (int k = 1; k < threads; ++k) {
        const int p = (q + k) % threads;
        done.wait(p, phase);
        packed.multiply_depth(a, H, B, c, ldc, true, parts[p].first,
                              parts[p].first + parts[p].units, backwards);
      }
    };
    // The rows past their length keep their state, then the part publishes its states.
    auto finish_states = [&](int q, Index s) {
      const Index u0 = parts[q].first, m = parts[q].units;
      for (Index i = 0; i < B; ++i)
        if (clock.time(i, s) < 0)
          std::copy_n(state[s % 2].data() + i * H + u0, m, state[(s + 1) % 2].data() + i * H + u0);
      done.publish(q, (s + 1) * phases);
    };
    // One part's share of step s: the products and gates (reset_after), or the products and
    // r, z (reset before, then `candidate`).
    auto gates = [&](int q, Index s) {
      const ForwardWeights<Scalar>& part = parts[q];
      const Index u0 = part.first, m = part.units, G = 3 * m, R = 4 * m;
      const Scalar* hp = state[s % 2].data();
      Scalar* hn = state[(s + 1) % 2].data();
      if (s % ahead == 0) {  // the projection of the next `ahead` steps onto the part's units
        const Index chunk_rows = std::min(ahead, T - s) * B;
        gather_inputs(x, B, I, clock, 0, B, s, chunk_rows / B, gathered[q].data());
        part.w_ih_t.project(gathered[q].data(), I, chunk_rows, gx[q].data(), G,
                            part.input_bias.data());
      }
      const Scalar* gxs = gx[q].data() + (s % ahead) * B * G;
      Scalar* ghs = gh[q].data();
      split_product(q, part.w_hh_t, hp, ghs, s * phases, s % 2 == 1);
      for (Index i = 0; i < B; ++i) {
        if (clock.time(i, s) < 0) continue;
        if (w.reset_after) {
          forward_reset_after<Scalar>(m, gxs + i * G, ghs + i * G, part.bias_hn_or_null(),
                                      hp + i * H + u0, nullptr, hn + i * H + u0);
        } else {
          Scalar* rec = recs[q].data() + i * R;
          forward_gates_rz(m, gxs + i * G, ghs + i * G, hp + i * H + u0, rec);
          std::copy_n(rec + 3 * m, m, reset_state.data() + i * H + u0);
        }
      }
      if (w.reset_after)
        finish_states(q, s);
      else
        done.publish(q, s * phases + 1);  // r * h of the part's units
    };
    auto candidate = [&](int q, Index s) {  // reset before the product
      const ForwardWeights<Scalar>& part = parts[q];
      const Index u0 = part.first, m = part.units, G = 3 * m, R = 4 * m;
      const Scalar* gxs = gx[q].data() + (s % ahead) * B * G;
      Scalar* ghs = gh[q].data();
      split_product(q, part.w_hn_t, reset_state.data(), ghs + 2 * m, s * phases + 1,
                    s % 2 == 1);
      for (Index i = 0; i < B; ++i)
        if (clock.time(i, s) >= 0)
          forward_candidate(m, gxs + i * G, ghs + i * G + 2 * m,
                            state[s % 2].data() + i * H + u0, recs[q].data() + i * R,
                            state[(s + 1) % 2].data() + i * H + u0);
      finish_states(q, s);
    };
    auto outputs = [&](int q, Index s) {
      const Index u0 = parts[q].first, m = parts[q].units;
      const Scalar* hn = state[(s + 1) % 2].data();
      for (Index i = 0; i < B; ++i) {
        const Index t = clock.time(i, s);
        if (t >= 0) std::copy_n(hn + i * H + u0, m, out + (t * B + i) * ldo + u0);
      }
    };

#pragma omp parallel num_threads(threads)
    {
      const FlushDenormals flush;
      // OpenMP may grant fewer threads than asked (inside another parallel region, say): then
      // a thread takes parts q, q + team, ... in turn; a part waits only for phases of the
      // step before, or of its own step that the thread has done already.
      const int team = omp_get_num_threads(), me = omp_get_thread_num();
      for (Index s = 0; s < T; ++s) {
        for (int q = me; q < threads; q += team) gates(q, s);
        if (!w.reset_after)
          for (int q = me; q < threads; q += team) candidate(q, s);
        if (out != nullptr)
          for (int q = me; q < threads; q += team) outputs(q, s);
      }
    }
    const RowMatrix<Scalar>& last = state[T % 2];
    if (h_n != nullptr) std::copy(last.data(), last.data() + B * H, h_n);
  }

  static void backward(TrainingCache<Scalar>& c, const Scalar* grad_out, const Scalar* grad_h_n,
                       Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>& grads,
                       bool accumulate_grad_x, bool keep) {
    if (!c.ready_)
      throw std::logic_error(
          "backward: no training forward to differentiate (run forward_training first; each "
          "backward consumes the forward it differentiates)");
    const Index T = c.steps_, B = c.batch_, H = c.hidden_size_, I = c.input_size_;
    const Index G = 3 * H, R = 4 * H, ldo = c.out_stride_;
    const bool reset_after = c.reset_after_;
    const StepClock clock{c.lengths_.empty() ? nullptr : c.lengths_.data(), T, c.reverse_};
    Sequence seq;
    seq.threads = c.threads_;

    const BackwardRecurrentWeights<Scalar> rec(c.weight_hh_.data(), H, reset_after);
    RowMatrix<Scalar> dh = RowMatrix<Scalar>::Zero(B, H);  // dL/dh, carried backwards in time
    if (grad_h_n != nullptr) dh = Eigen::Map<const RowMatrix<Scalar>>(grad_h_n, B, H);
    RowMatrix<Scalar> dgh(B, G);                   // left factor of the product with W_hh
    RowMatrix<Scalar> dq(reset_after ? 0 : B, H);  // dL/d(r * h), reset before the product
    const Scalar* states = c.prev_states_.data();
    Scalar* gates = c.gates_.data();  // overwritten with gate gradients, unless kept
    if (keep) {
      c.kept_copy_ = c.gates_;
      gates = c.kept_copy_.data();
    }

    // The biases' gradients are the column sums of the gate gradients [da_r, da_z, da_n, m'],
    // summed per thread as the rows are made, while they are in cache.
    const int loop_threads = threads_for(seq, B);
    RowMatrix<Scalar> bias_sums = RowMatrix<Scalar>::Zero(c.has_bias_ ? loop_threads : 1, R);

    // dx and the weight gradients are products over the gate gradients of all rows and steps.
    // Without lengths, a thread's rows of a step are contiguous, so each thread makes its share
    // every few steps from the rows it has just made, while they are in cache, into its own
    // partial weight gradients when there are several threads, if those fit in L2 (each share
    // reads and writes them whole). With lengths, a row's steps lie apart in time, and one pass
    // after the loop makes them, as it does for weights too large for per-thread partials and
    // for slices of a step too thin to multiply efficiently.
    PackedMatrix<Scalar> w_ih;
    if (grad_x != nullptr) w_ih.pack(c.weight_ih_.data(), G, I, I, 1);
    const GradientProducts<Scalar> products{gates, c.inputs_.data(), states, I, H, reset_after,
                                            grad_x != nullptr ? &w_ih : nullptr, grad_x,
                                            accumulate_grad_x};
    const bool small_weights = G * (I + H) * static_cast<Index>(sizeof(Scalar)) <= 512 * 1024;
    const bool in_loop = c.lengths_.empty() &&
                         (loop_threads == 1 || (small_weights && B / loop_threads >= 64));
    const bool partials = in_loop && loop_threads > 1;
    eigengru::detail::count_path(!in_loop  ? Path::kBackwardProductsAfter
               : partials ? Path::kBackwardPartials
                          : Path::kBackwardProductsInLoop);
    RowMatrix<Scalar> partial_ih(partials && grads.weight_ih != nullptr ? loop_threads * G : 0, I);
    RowMatrix<Scalar> partial_hh(partials && grads.weight_hh != nullptr ? loop_threads * G : 0, H);
    partial_ih.setZero();
    partial_hh.setZero();
    // Rows per share: enough depth for the products to be efficient and for the partials'
    // reads and writes to be small beside the multiply-adds.
    const Index share_rows = std::max<Index>(128, G * (I + H) / 2048);

#pragma omp parallel num_threads(loop_threads)
    {
      const FlushDenormals flush;
      const RowSlice rows = my_rows(B);
      const Index b0 = rows.begin, n = rows.size();
      Scalar* dhs = dh.data() + b0 * H;
      Scalar* dghs = dgh.data() + b0 * G;
      auto add_to_sums = [&](Index s) {
        if (!c.has_bias_) return;
        ArrayMap<Scalar> sums(bias_sums.data() + omp_get_thread_num() * R, R);
        for (Index i = 0; i < n; ++i) {
          const Index t = clock.time(b0 + i, s);
          if (t >= 0) sums += ConstArrayMap<Scalar>(gates + (t * B + b0 + i) * R, R);
        }
      };
      Scalar* my_dw_ih = !partials ? grads.weight_ih
                         : grads.weight_ih != nullptr ? partial_ih.data() + omp_get_thread_num() * G * I
                                                      : nullptr;
      Scalar* my_dw_hh = !partials ? grads.weight_hh
                         : grads.weight_hh != nullptr ? partial_hh.data() + omp_get_thread_num() * G * H
                                                      : nullptr;
      const Index share_steps = std::max<Index>(1, share_rows / std::max<Index>(1, n));
      Index share_end = T;  // steps [s, share_end) are made and not yet multiplied
      auto multiply_share = [&](Index s) {
        const Index t_first = std::min(clock.time(b0, s), clock.time(b0, share_end - 1));
        const Index t_count = share_end - s;
        if (n == B)  // the whole batch: one run of rows
          products.run(t_first * B, t_count * B, my_dw_ih, my_dw_hh, 1);
        else
          for (Index t = t_first; t < t_first + t_count; ++t)
            products.run(t * B + b0, n, my_dw_ih, my_dw_hh, 1);
        share_end = s;
      };
      for (Index s = T - 1; s >= 0 && n > 0; --s) {
        for (Index i = 0; i < n; ++i) {
          const Index b = b0 + i, t = clock.time(b, s);
          Scalar* dh_i = dhs + i * H;
          if (t < 0) {  // a padded step: the gradient passes through, the products add nothing
            std::fill_n(dghs + i * G, G, 0);
            continue;
          }
          if (grad_out != nullptr) {
            const Scalar* go = grad_out + (t * B + b) * ldo;
            for (Index k = 0; k < H; ++k) dh_i[k] += go[k];
          }
          const Index at = t * B + b;
          if (reset_after)
            backward_reset_after(H, states + at * H, gates + at * R, dh_i, dghs + i * G);
          else
            backward_update_candidate(H, states + at * H, gates + at * R, dh_i, dghs + i * G);
        }
        const bool backwards = s % 2 == 1;  // see PackedMatrix::multiply
        if (reset_after) {
          rec.rz_or_all.multiply(dghs, G, n, dhs, H, true, 1, nullptr,
                                 backwards);  // dh_{t-1} += [da_r da_z dm] W_hh
        } else {
          Scalar* dqs = dq.data() + b0 * H;
          rec.n.multiply(dghs + 2 * H, G, n, dqs, H, false, 1, nullptr,
                         backwards);  // dq = da_n W_hn
          for (Index i = 0; i < n; ++i) {
            const Index b = b0 + i, t = clock.time(b, s);
            if (t < 0) continue;
            const Index at = t * B + b;
            backward_reset(H, states + at * H, dqs + i * H, gates + at * R, dhs + i * H,
                           dghs + i * G);
          }
          rec.rz_or_all.multiply(dghs, G, n, dhs, H, true, 1, nullptr,
                                 backwards);  // dh_{t-1} += [da_r da_z] W_h{r,z}
        }
        add_to_sums(s);
        if (in_loop && (share_end - s == share_steps || s == 0)) multiply_share(s);
      }
    }
    if (grad_h0 != nullptr) std::copy(dh.data(), dh.data() + B * H, grad_h0);

    const FlushDenormals flush;  // on this thread; the products' threads set their own
    if (!in_loop)
      products.run(0, T * B, grads.weight_ih, grads.weight_hh, threads_for(seq, T * B));
    for (int t = 0; t < loop_threads && partials; ++t) {  // in thread order
      if (grads.weight_ih != nullptr)
        Eigen::Map<RowMatrix<Scalar>>(grads.weight_ih, G, I) += partial_ih.middleRows(t * G, G);
      if (grads.weight_hh != nullptr)
        Eigen::Map<RowMatrix<Scalar>>(grads.weight_hh, G, H) += partial_hh.middleRows(t * G, G);
    }
    if (c.has_bias_) {  // the threads' column sums, added in thread order
      const Vector<Scalar> sums = bias_sums.colwise().sum().transpose();
      if (grads.bias_ih != nullptr) Eigen::Map<Vector<Scalar>>(grads.bias_ih, G) += sums.head(G);
      if (grads.bias_hh != nullptr) {
        Eigen::Map<Vector<Scalar>> db(grads.bias_hh, G);
        db.head(2 * H) += sums.head(2 * H);
        db.tail(H) += sums.segment(reset_after ? 3 * H : 2 * H, H);
      }
    }
    if (!keep) c.ready_ = false;  // consumed; the memory stays for the next forward_training
  }
};

}  // namespace detail

template <typename Scalar>
void forward(const LayerWeights<Scalar>& weights, const Sequence& seq, const Scalar* x,
             const Scalar* h0, Scalar* out, Scalar* h_n) {
  detail::check_arguments("forward", weights, seq, x);
  detail::LayerPasses<Scalar>::forward(weights, seq, x, h0, out, h_n, nullptr);
}

template <typename Scalar>
void forward_training(const LayerWeights<Scalar>& weights, const Sequence& seq, const Scalar* x,
                      const Scalar* h0, Scalar* out, Scalar* h_n, TrainingCache<Scalar>& cache) {
  detail::check_arguments("forward_training", weights, seq, x);
  detail::LayerPasses<Scalar>::forward(weights, seq, x, h0, out, h_n, &cache);
}

template <typename Scalar>
void backward(TrainingCache<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
              Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>& grads,
              bool accumulate_grad_x, bool keep_cache) {
  detail::LayerPasses<Scalar>::backward(cache, grad_out, grad_h_n, grad_x, grad_h0, grads,
                                        accumulate_grad_x, keep_cache);
}

#define EIGENGRU_INSTANTIATE(Scalar)                                                           \
  template void forward<Scalar>(const LayerWeights<Scalar>&, const Sequence&, const Scalar*,    \
                                const Scalar*, Scalar*, Scalar*);                              \
  template void forward_training<Scalar>(const LayerWeights<Scalar>&, const Sequence&,          \
                                         const Scalar*, const Scalar*, Scalar*, Scalar*,        \
                                         TrainingCache<Scalar>&);                               \
  template void backward<Scalar>(TrainingCache<Scalar>&, const Scalar*, const Scalar*, Scalar*, \
                                 Scalar*, const LayerGradients<Scalar>&, bool, bool);
EIGENGRU_INSTANTIATE(float)
EIGENGRU_INSTANTIATE(double)
#undef EIGENGRU_INSTANTIATE

}  // namespace eigengru::EIGENGRU_KERNEL_SET
