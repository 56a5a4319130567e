// One forward step of a single row (batch 1), reset_after, with the standard sigmoid and tanh
// gates applied to the recurrent product's sums while they are still in registers.
//
// At batch 1 a step is one product of the state with W_hhᵀ (H x 3H), short enough that what
// surrounds it counts: storing the sums and reading them back for a separate gate pass costs
// more than the gates themselves. The hidden units go in groups of up to 3 vectors: a group's
// r, z and n sums (3 x 3 = 9 accumulators) are made over the whole depth, then its gates, its
// state and its record, the vectors in the order the next step (the other direction) reads
// them first, so that it can start before the last gates are done. One group's gates overlap
// the next group's product.
//
// The gates are cell.hpp's ResetAfterChunk, the batched gate pass's own arithmetic, and the
// sums are added over k in the order PackedMatrix::multiply adds a single row's when it takes
// 3 or more panels at once (one chain per depth block): then the fused step gives the unfused one's
// results bit for bit (tests/cpp/test_row_step.cpp). With fewer panels (16 float or 8 double units)
// it rounds differently, within float tolerance.
#pragma once

#include "cell.hpp"
#include "micro_kernel.hpp"
#include "packed_matrix.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

/// Whether forward_row_reset_after can take a layer of H units whose W_hhᵀ is w_hh_t: stored
/// row by row (so at most 85 float or 42 double units), with every gate block starting on a
/// vector (H a multiple of 16 floats or 8 doubles).
template <typename Scalar>
bool fits_row_step(const PackedMatrix<Scalar>& w_hh_t, Index H) {
  return w_hh_t.narrow() && w_hh_t.cols() == 3 * H && w_hh_t.rows() == H && H % kLanes<Scalar> == 0;
}

/// Units [u0, u0 + Q * kLanes) of the step.
template <typename Scalar, int Q>
__attribute__((always_inline)) inline void row_step_group(Index H, const Scalar* w, Index ldw,
                                                          Index u0, const Scalar* gx,
                                                          const Scalar* bias_hn,
                                                          const Scalar* h_prev, Scalar* rec,
                                                          Scalar* h_next, bool descending) {
  constexpr Index L = kLanes<Scalar>;
  Vec<Scalar> acc[3][Q], block[3][Q];
  const Scalar* b = w + u0;  // gate g's vector q of row k at b + k * ldw + g * H + q * L
  auto row = [&](Index k) __attribute__((always_inline)) {
    const Scalar hk = h_prev[k];
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
        block[g][q] += hk * load_vector(b + k * ldw + g * H + q * L);
  };
  // The depth in the kernels' blocks, their sums added as the kernels add them to C.
  for_each_depth_block(
      H, descending, [&](Index k0, Index k1, bool first, bool) __attribute__((always_inline)) {
        EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
            block[g][q] = Vec<Scalar>{};
        if (!descending)
          for (Index k = k0; k < k1; ++k) row(k);
        else
          for (Index k = k1 - 1; k >= k0; --k) row(k);
        EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
            acc[g][q] = first ? block[g][q] : acc[g][q] + block[g][q];
      });

  auto chunk = [](const Vec<Scalar>& v) __attribute__((always_inline)) {
    Chunk<Scalar> c;
    store_vector(c.data(), v);
    return c;
  };
  const FullChunk<Scalar> len;
  auto finish = [&](int q) __attribute__((always_inline)) {
    const Index j = u0 + q * L;
    const ResetAfterChunk<Scalar> gates(load(gx, j, len), load(gx + H, j, len),
                                        load(gx + 2 * H, j, len), chunk(acc[0][q]),
                                        chunk(acc[1][q]), chunk(acc[2][q]), bias_hn, j, len,
                                        load(h_prev, j, len), StandardFunctions<Scalar>{});
    store(h_next, j, len, gates.h_next);
    if (rec != nullptr) gates.store_record(rec, H, j, len);
  };
  if (descending)
    EIGENGRU_UNROLL for (int q = 0; q < Q; ++q) finish(q);
  else
    EIGENGRU_UNROLL for (int q = Q - 1; q >= 0; --q) finish(q);
}

/// The most unit vectors in a group: 3 x 3 = 9 accumulators. Larger groups leave a small
/// layer's gates no other group's product to overlap with; smaller ones reread h more often.
constexpr Index kMaxGroupVectors = 3;

/// forward_reset_after(H, gx, h_prev W_hhᵀ, bias_hn, h_prev, rec, h_next) in one pass, for a
/// layer that fits_row_step. h_next must not overlap h_prev (every group reads all of h_prev).
/// `backwards` as in PackedMatrix::multiply: the groups and the depth last to first.
template <typename Scalar>
void forward_row_reset_after(const PackedMatrix<Scalar>& w_hh_t, Index H, const Scalar* gx,
                             const Scalar* bias_hn, const Scalar* h_prev, Scalar* rec,
                             Scalar* h_next, bool backwards) {
  constexpr Index L = kLanes<Scalar>;
  const Scalar* w = w_hh_t.data();
  const Index ldw = w_hh_t.row_stride(), vectors = H / L;
  const Index groups = (vectors + kMaxGroupVectors - 1) / kMaxGroupVectors;
  for (Index q = 0; q < groups; ++q) {
    const Index g = backwards ? groups - 1 - q : q;
    const Index v0 = vectors * g / groups, v1 = vectors * (g + 1) / groups;  // balanced
    auto group = [&](auto width) __attribute__((always_inline)) {
      row_step_group<Scalar, decltype(width)::value>(H, w, ldw, v0 * L, gx, bias_hn, h_prev, rec,
                                                     h_next, backwards);
    };
    static_assert(kMaxGroupVectors == 3);
    switch (v1 - v0) {
      case 3: group(std::integral_constant<int, 3>{}); break;
      case 2: group(std::integral_constant<int, 2>{}); break;
      case 1: group(std::integral_constant<int, 1>{}); break;
      default: break;
    }
  }
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
