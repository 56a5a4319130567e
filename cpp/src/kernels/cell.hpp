// The fused per-step gate passes of one batch row: everything between the recurrent products.
//
// Each row's gate record holds four blocks of H values:
//   forward:  [r, z, n, m]   m = W_hn h + b_hn  (reset_after)   or  m = r * h  (reset before)
//   backward: [da_r, da_z, da_n, m']  with da_* = dL/d(pre-activation of gate *), and
//             m' = dL/d(W_hn h + b_hn) (reset_after), or m kept as r * h (reset before).
// The fourth block is whatever multiplies W_hn, so the weight gradient of the candidate's
// recurrent part is always a whole-sequence product with it after the time loop.
//
// A row is processed in chunks of one vector register held in fixed-size Eigen arrays, the last
// chunk zero-padded. Every element thus takes the same vectorised path wherever it lies in
// memory, which keeps results bitwise independent of buffer alignment (Eigen would otherwise
// peel unaligned heads into scalar code, whose sigmoid and tanh round differently). The
// nonlinearities are Eigen's: for float, vectorised rational approximations within a few ulp of
// the exact functions that saturate cleanly at large |x|. Every pass takes a layer's other
// functions (gate_functions.hpp), or nullptr for these.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "gate_functions.hpp"
#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// A chunk's length: kLanes, known when compiling, for every chunk but a row's last.
template <typename Scalar>
using FullChunk = std::integral_constant<Index, kLanes<Scalar>>;

/// Elements [j, j + len) of p, len <= kLanes, zero-padded.
template <typename Scalar, typename Length>
__attribute__((always_inline)) inline Chunk<Scalar> load(const Scalar* p, Index j, Length len) {
  if (len == kLanes<Scalar>) return Eigen::Map<const Chunk<Scalar>>(p + j);
  Chunk<Scalar> c = Chunk<Scalar>::Zero();
  std::copy(p + j, p + j + len, c.data());
  return c;
}

template <typename Scalar, typename Length>
__attribute__((always_inline)) inline void store(Scalar* p, Index j, Length len,
                                                 const Chunk<Scalar>& c) {
  if (len == kLanes<Scalar>)
    Eigen::Map<Chunk<Scalar>>(p + j) = c;
  else
    std::copy(c.data(), c.data() + len, p + j);
}

/// Elements [j, j + len) of p = c, by a non-temporal store where the chunk is whole and p + j is
/// aligned to the vector (the cache line is written without being read, and not kept), else
/// by store(). For a training forward's gate records when there are more of them than the
/// caches keep: nothing reads them until the backward, which reads them from memory either way.
template <typename Scalar, typename Length>
__attribute__((always_inline)) inline void store_streaming(Scalar* p, Index j, Length len,
                                                           const Chunk<Scalar>& c) {
#if defined(__SSE2__)
  static_assert(sizeof(Chunk<Scalar>) == kVectorBytes);
  if (len == kLanes<Scalar> && reinterpret_cast<std::uintptr_t>(p + j) % kVectorBytes == 0) {
    constexpr bool kFloat = std::is_same_v<Scalar, float>;
#if defined(__AVX512F__)
    if constexpr (kFloat)
      _mm512_stream_ps(p + j, _mm512_loadu_ps(c.data()));
    else
      _mm512_stream_pd(p + j, _mm512_loadu_pd(c.data()));
#elif defined(__AVX__)
    if constexpr (kFloat)
      _mm256_stream_ps(p + j, _mm256_loadu_ps(c.data()));
    else
      _mm256_stream_pd(p + j, _mm256_loadu_pd(c.data()));
#else
    if constexpr (kFloat)
      _mm_stream_ps(p + j, _mm_loadu_ps(c.data()));
    else
      _mm_stream_pd(p + j, _mm_loadu_pd(c.data()));
#endif
    return;
  }
#endif
  store(p, j, len, c);
}

/// Orders the non-temporal stores of store_streaming() before the calling thread's later
/// stores (an OpenMP barrier or join after it then publishes them to the other threads).
inline void finish_streaming_stores() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

/// Calls step(j, len) for consecutive chunks covering [0, n): len is a FullChunk for all but a
/// last, shorter chunk, so that the full chunks' code has no length tests and no copies.
template <typename Scalar, typename Step>
__attribute__((always_inline)) inline void for_each_chunk(Index n, Step step) {
  Index j = 0;
  for (; j + kLanes<Scalar> <= n; j += kLanes<Scalar>) step(j, FullChunk<Scalar>{});
  if (j < n) step(j, n - j);
}

/// One chunk of the forward gates, reset_after, from the pre-activation sums of the chunk's units:
/// x_* = the input projection (b_ih and b_hr, b_hz folded in), h_* = W_h* h (b_hn added here).
/// The one place this arithmetic is written: the batched gate pass below and the fused batch-1
/// step (row_step.hpp) give the same values bit for bit. f: StandardFunctions or GateFunctions.
template <typename Scalar>
struct ResetAfterChunk {
  Chunk<Scalar> r, z, n, m, h_next;

  /// len: the chunk's length, a FullChunk where it is known when compiling (see load()).
  template <typename Length, typename Functions>
  __attribute__((always_inline)) ResetAfterChunk(const Chunk<Scalar>& x_r, const Chunk<Scalar>& x_z,
                                                 const Chunk<Scalar>& x_n, const Chunk<Scalar>& h_r,
                                                 const Chunk<Scalar>& h_z, const Chunk<Scalar>& h_n,
                                                 const Scalar* bias_hn, Index j, Length len,
                                                 const Chunk<Scalar>& h_prev, const Functions& f)
      : r(f.gate(x_r + h_r)), z(f.gate(x_z + h_z)), m(h_n) {
    if (bias_hn != nullptr) m += load(bias_hn, j, len);
    n = f.candidate(x_n + r * m);
    h_next = n + z * (h_prev - n);  // (1 - z) n + z h
  }

  /// Writes [r, z, n, m] to a gate record of 4 blocks of H, by non-temporal stores when
  /// `streaming` (store_streaming()).
  template <typename Length>
  __attribute__((always_inline)) void store_record(Scalar* rec, Index H, Index j, Length len,
                                                   bool streaming = false) const {
    const auto put = [&](Scalar* p, const Chunk<Scalar>& c) __attribute__((always_inline)) {
      if (streaming)
        store_streaming(p, j, len, c);
      else
        store(p, j, len, c);
    };
    put(rec, r);
    put(rec + H, z);
    put(rec + 2 * H, n);
    put(rec + 3 * H, m);
  }
};

/// Forward, reset_after: gx = input projection with b_ih and b_hr, b_hz folded in; gh = W_hh h.
/// rec may be nullptr (inference: nothing reads the record); stream_record: written by
/// non-temporal stores (store_streaming()).
template <typename Scalar>
inline void forward_reset_after(Index H, const Scalar* gx, const Scalar* gh, const Scalar* bias_hn,
                                const Scalar* h_prev, Scalar* rec, Scalar* h_next,
                                const GateFunctions<Scalar>* f_or_null,
                                bool stream_record = false) {
  with_functions(f_or_null, [&](const auto& f) __attribute__((always_inline)) {
    for_each_chunk<Scalar>(H, [&](Index j, auto len) __attribute__((always_inline)) {
      const ResetAfterChunk<Scalar> g(
          load(gx, j, len), load(gx + H, j, len), load(gx + 2 * H, j, len), load(gh, j, len),
          load(gh + H, j, len), load(gh + 2 * H, j, len), bias_hn, j, len, load(h_prev, j, len), f);
      store(h_next, j, len, g.h_next);
      if (rec != nullptr) g.store_record(rec, H, j, len, stream_record);
    });
  });
}

/// Forward, reset before the product, first half: r, z and m = r * h (the product's input; h as
/// the products read it, times its dropout mask in training with recurrent dropout).
template <typename Scalar>
inline void forward_gates_rz(Index H, const Scalar* gx, const Scalar* gh, const Scalar* h_prev,
                             Scalar* rec, const GateFunctions<Scalar>* f_or_null) {
  with_functions(f_or_null, [&](const auto& f) __attribute__((always_inline)) {
    for_each_chunk<Scalar>(H, [&](Index j, auto len) __attribute__((always_inline)) {
      const Chunk<Scalar> r = f.gate(Chunk<Scalar>(load(gx, j, len) + load(gh, j, len)));
      store(rec, j, len, r);
      store(rec + H, j, len, f.gate(Chunk<Scalar>(load(gx + H, j, len) + load(gh + H, j, len))));
      store(rec + 3 * H, j, len, Chunk<Scalar>(r * load(h_prev, j, len)));
    });
  });
}

/// Forward, reset before the product, second half: gh_n = W_hn (r * h); gx holds b_in + b_hn.
template <typename Scalar>
inline void forward_candidate(Index H, const Scalar* gx, const Scalar* gh_n, const Scalar* h_prev,
                              Scalar* rec, Scalar* h_next, const GateFunctions<Scalar>* f_or_null) {
  with_functions(f_or_null, [&](const auto& f) __attribute__((always_inline)) {
    for_each_chunk<Scalar>(H, [&](Index j, auto len) __attribute__((always_inline)) {
      const Chunk<Scalar> n =
          f.candidate(Chunk<Scalar>(load(gx + 2 * H, j, len) + load(gh_n, j, len)));
      const Chunk<Scalar> z = load(rec + H, j, len);
      store(h_next, j, len, Chunk<Scalar>(n + z * (load(h_prev, j, len) - n)));
      store(rec + 2 * H, j, len, n);
    });
  });
}

// Backward. dh holds dL/dh_t on entry (output gradient plus what flowed back from step t+1).
// Derivation (numbers as in the README):
//   (1) dn   = dh * (1 - z)                 from h' = (1 - z) n + z h
//   (2) dz   = dh * (h - n)
//   (3) dh  <- dh * z                       the direct path to h_{t-1}
//   (4) da_n = dn * (1 - n^2)               n = tanh(a_n)
//   (5) da_z = dz * z (1 - z)               z = sigmoid(a_z)
//   (6) da_r = dr * r (1 - r)               r = sigmoid(a_r)
// (other functions: their slopes in place of 1 - n^2 and z (1 - z), r (1 - r)).

/// reset_after: a_n = x_n + r * m, so (7) dr = da_n * m and (8) dm = da_n * r.
/// Writes [da_r, da_z, da_n, dm] over the record and [da_r, da_z, dm] into dgh (the left factor of
/// the product with W_hh that completes dh_{t-1}).
template <typename Scalar>
inline void backward_reset_after(Index H, const Scalar* h_prev, Scalar* rec, Scalar* dh,
                                 Scalar* dgh, const GateFunctions<Scalar>* f_or_null) {
  with_functions(f_or_null, [&](const auto& f) __attribute__((always_inline)) {
    for_each_chunk<Scalar>(H, [&](Index j, auto len) __attribute__((always_inline)) {
      const Chunk<Scalar> r = load(rec, j, len), z = load(rec + H, j, len);
      const Chunk<Scalar> n = load(rec + 2 * H, j, len), m = load(rec + 3 * H, j, len);
      const Chunk<Scalar> d = load(dh, j, len);
      const Chunk<Scalar> da_n = d * (1 - z) * f.candidate_slope(n);                // (1), (4)
      const Chunk<Scalar> da_r = da_n * m * f.gate_slope(r);                        // (7), (6)
      const Chunk<Scalar> da_z = d * (load(h_prev, j, len) - n) * f.gate_slope(z);  // (2), (5)
      const Chunk<Scalar> dm = da_n * r;                                            // (8)
      store(dh, j, len, Chunk<Scalar>(d * z));                                      // (3)
      store(rec, j, len, da_r);
      store(rec + H, j, len, da_z);
      store(rec + 2 * H, j, len, da_n);
      store(rec + 3 * H, j, len, dm);
      store(dgh, j, len, da_r);
      store(dgh + H, j, len, da_z);
      store(dgh + 2 * H, j, len, dm);
    });
  });
}

/// Reset before the product, first half: (1)-(5). Writes da_z and da_n into the record and into
/// dgh (whose n block is the left factor of dq = da_n W_hn); keeps r and m = r * h.
template <typename Scalar>
inline void backward_update_candidate(Index H, const Scalar* h_prev, Scalar* rec, Scalar* dh,
                                      Scalar* dgh, const GateFunctions<Scalar>* f_or_null) {
  with_functions(f_or_null, [&](const auto& f) __attribute__((always_inline)) {
    for_each_chunk<Scalar>(H, [&](Index j, auto len) __attribute__((always_inline)) {
      const Chunk<Scalar> z = load(rec + H, j, len), n = load(rec + 2 * H, j, len);
      const Chunk<Scalar> d = load(dh, j, len);
      const Chunk<Scalar> da_n = d * (1 - z) * f.candidate_slope(n);                // (1), (4)
      const Chunk<Scalar> da_z = d * (load(h_prev, j, len) - n) * f.gate_slope(z);  // (2), (5)
      store(dh, j, len, Chunk<Scalar>(d * z));                                      // (3)
      store(rec + H, j, len, da_z);
      store(rec + 2 * H, j, len, da_n);
      store(dgh + H, j, len, da_z);
      store(dgh + 2 * H, j, len, da_n);
    });
  });
}

/// Reset before the product, second half, given dq = dL/d(r * h) = da_n W_hn:
/// (9) dr = dq * h and (10) dh += dq * r; writes da_r into the record and dgh.
template <typename Scalar>
inline void backward_reset(Index H, const Scalar* h_prev, const Scalar* dq, Scalar* rec, Scalar* dh,
                           Scalar* dgh, const GateFunctions<Scalar>* f_or_null) {
  with_functions(f_or_null, [&](const auto& f) __attribute__((always_inline)) {
    for_each_chunk<Scalar>(H, [&](Index j, auto len) __attribute__((always_inline)) {
      const Chunk<Scalar> r = load(rec, j, len), q = load(dq, j, len);
      const Chunk<Scalar> da_r = q * load(h_prev, j, len) * f.gate_slope(r);  // (9), (6)
      store(dh, j, len, Chunk<Scalar>(load(dh, j, len) + q * r));             // (10)
      store(rec, j, len, da_r);
      store(dgh, j, len, da_r);
    });
  });
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
