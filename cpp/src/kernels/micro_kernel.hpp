// The one multiply-add kernel under every product of the library: a block of up to kRowBlock
// rows of C times one panel of B (kPanelWidth columns), accumulated over a depth of k in
// blocks of kDepthBlock.
//
//   C(i, j) (+)= sum_k A(i, k) B(k, j) [+ bias(j)]    i < rows, j < ncols <= kPanelWidth
//   A(i, k) = a[i * lda + k * a_step]                   (row-major A: a_step = 1; Aᵀ: lda = 1)
//   B(k, j) = b[k * ldb + j]                            (a packed panel: ldb = kPanelWidth, or
//                                                        a narrow matrix's padded row length)
//
// B is read as two full 64-byte vectors per k, so b[k * ldb + j] must be readable for every
// j < kPanelWidth even when ncols is smaller (packed panels are zero-padded for this).
//
// Vectors are GCC/Clang vector extensions: one 64-byte register on AVX-512, split by the
// compiler elsewhere, so the portable build stays correct. The aligned(...) attribute allows
// unaligned loads.
#pragma once

#include <algorithm>
#include <type_traits>

#include "matrix_types.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

template <typename Scalar>
struct VectorOf;
template <>
struct VectorOf<float> {
  typedef float type __attribute__((vector_size(EIGENGRU_VECTOR_BYTES), aligned(4)));
};
template <>
struct VectorOf<double> {
  typedef double type __attribute__((vector_size(EIGENGRU_VECTOR_BYTES), aligned(8)));
};
template <typename Scalar>
using Vec = typename VectorOf<Scalar>::type;

/// 8 rows x 2 vectors = 16 accumulators of 32 vector registers; with 16 registers, 6 rows (12).
constexpr Index kRowBlock = kVectorRegisters >= 32 ? 8 : 6;

/// The same vector as an access type that may sit at any element boundary and alias the
/// scalars: one whole-register load or store. (A memcpy into a Vec is moved in 16-byte pieces
/// under generic tuning, and the vector is then reloaded from the stack, stalling on store
/// forwarding.)
template <typename Scalar>
struct UnalignedVectorOf;
template <>
struct UnalignedVectorOf<float> {
  typedef float type __attribute__((vector_size(EIGENGRU_VECTOR_BYTES), aligned(4), may_alias));
};
template <>
struct UnalignedVectorOf<double> {
  typedef double type __attribute__((vector_size(EIGENGRU_VECTOR_BYTES), aligned(8), may_alias));
};

template <typename Scalar>
inline Vec<Scalar> load_vector(const Scalar* p) {
  return *reinterpret_cast<const typename UnalignedVectorOf<Scalar>::type*>(p);
}

template <typename Scalar>
inline void store_vector(Scalar* p, const Vec<Scalar>& v) {
  *reinterpret_cast<typename UnalignedVectorOf<Scalar>::type*>(p) = v;
}

/// What a kernel call writes: C = product, C += product, and an optional row vector (a bias)
/// added to every row.
template <typename Scalar>
struct Output {
  Scalar* c;
  Index ldc;
  Index ncols;
  bool accumulate;
  const Scalar* bias = nullptr;  ///< kPanelWidth readable values, or nullptr
};

/// Writes (or adds, when out.accumulate) the first out.ncols of the 2 vectors v0, v1 to row.
template <typename Scalar>
__attribute__((always_inline)) inline void store_row(const Output<Scalar>& out, Scalar* row,
                                                     Vec<Scalar> v0, Vec<Scalar> v1) {
  constexpr Index L = kLanes<Scalar>;
  if (out.ncols == kPanelWidth<Scalar>) {
    if (out.accumulate) {
      v0 += load_vector(row);
      v1 += load_vector(row + L);
    }
    store_vector(row, v0);
    store_vector(row + L, v1);
  } else {
    alignas(64) Scalar tmp[kPanelWidth<Scalar>];
    store_vector(tmp, v0);
    store_vector(tmp + L, v1);
    for (Index j = 0; j < out.ncols; ++j) row[j] = out.accumulate ? row[j] + tmp[j] : tmp[j];
  }
}

// Loops over the kernel's registers are unrolled before the compiler decides where the
// accumulators live: GCC otherwise keeps the KU partial sums in stack memory around the k loop.
// The same holds for the loop that stores the rows: left rolled, it makes GCC zero all the
// accumulators on the stack before the k loop and spill them after it, which short products
// (a recurrence's depth is its hidden size) cannot amortise.
#if defined(__clang__)
#define EIGENGRU_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define EIGENGRU_UNROLL _Pragma("GCC unroll 16")
#else
#define EIGENGRU_UNROLL
#endif

/// The depth summed in one chain before the chain's sum goes to C: the rounding error of a
/// chain of n additions grows with n, so long dot products (an input or hidden size in the
/// hundreds, the backward's sums over every step) are summed in blocks of this many terms, the
/// blocks' sums then added in order. A block costs one more load, add and store per accumulator
/// beside its multiply-adds. The fused batch-1 step (row_step.hpp) sums in the same blocks.
constexpr Index kDepthBlock = 64;

/// Calls block(k0, k1, first, last) for the depth blocks [k0, k1) of [0, depth), ascending, or
/// descending when `descending`; at least once, for an empty depth too.
template <typename Block>
__attribute__((always_inline)) inline void for_each_depth_block(Index depth, bool descending,
                                                                Block block) {
  const Index count = std::max<Index>(1, (depth + kDepthBlock - 1) / kDepthBlock);
  for (Index q = 0; q < count; ++q) {
    const Index b = descending ? count - 1 - q : q;
    block(b * kDepthBlock, std::min(depth, (b + 1) * kDepthBlock), q == 0, q == count - 1);
  }
}

// The accumulators are split KU ways over k so that even one row keeps enough independent
// multiply-add chains in flight to hide their latency; the KU partial sums are added in a fixed
// order, so results do not depend on anything but the inputs.
template <typename Scalar, int MR, int KU, bool kUnitStep>
void micro_kernel(const Scalar* a, Index lda, Index a_step, const Scalar* b, Index ldb, Index depth,
                  const Output<Scalar>& out) {
  const Index step = kUnitStep ? 1 : a_step;
  constexpr Index L = kLanes<Scalar>;
  for_each_depth_block(
      depth, false, [&](Index k0, Index k1, bool first, bool last) __attribute__((always_inline)) {
        Vec<Scalar> acc[KU][MR][2];
        EIGENGRU_UNROLL for (int u = 0; u < KU; ++u) EIGENGRU_UNROLL for (int i = 0; i < MR; ++i)
            acc[u][i][0] = acc[u][i][1] = Vec<Scalar>{};
        Index k = k0;
        for (; k + KU <= k1; k += KU) {
          EIGENGRU_UNROLL for (int u = 0; u < KU; ++u) {
            const Vec<Scalar> b0 = load_vector(b + (k + u) * ldb);
            const Vec<Scalar> b1 = load_vector(b + (k + u) * ldb + L);
            EIGENGRU_UNROLL for (int i = 0; i < MR; ++i) {
              const Scalar ai = a[i * lda + (k + u) * step];
              acc[u][i][0] += ai * b0;
              acc[u][i][1] += ai * b1;
            }
          }
        }
        for (; k < k1; ++k) {
          const Vec<Scalar> b0 = load_vector(b + k * ldb);
          const Vec<Scalar> b1 = load_vector(b + k * ldb + L);
          EIGENGRU_UNROLL for (int i = 0; i < MR; ++i) {
            const Scalar ai = a[i * lda + k * step];
            acc[0][i][0] += ai * b0;
            acc[0][i][1] += ai * b1;
          }
        }
        EIGENGRU_UNROLL for (int u = 1; u < KU; ++u) EIGENGRU_UNROLL for (int i = 0; i < MR; ++i) {
          acc[0][i][0] += acc[u][i][0];
          acc[0][i][1] += acc[u][i][1];
        }

        Vec<Scalar> bias0{}, bias1{};
        const bool with_bias = last && out.bias != nullptr;
        if (with_bias) {
          bias0 = load_vector(out.bias);
          bias1 = load_vector(out.bias + L);
        }
        Output<Scalar> block_out = out;
        block_out.accumulate = out.accumulate || !first;
        EIGENGRU_UNROLL for (int i = 0; i < MR; ++i) {
          Vec<Scalar> v0 = acc[0][i][0], v1 = acc[0][i][1];
          if (with_bias) {
            v0 += bias0;
            v1 += bias1;
          }
          store_row(block_out, out.c + i * out.ldc, v0, v1);
        }
      });
}

/// Where a single-row product over P consecutive panels writes: row c (panel p's columns at
/// c + p * kPanelWidth), all kPanelWidth columns of every panel but the last, which has
/// last_ncols. With a bias, panel p's values are bias + p * kPanelWidth, the last panel's
/// last_bias (kPanelWidth readable values, zero-padded when the panel is short).
template <typename Scalar>
struct RowOutput {
  Scalar* c;
  Index last_ncols;
  bool accumulate;
  const Scalar* bias = nullptr;
  const Scalar* last_bias = nullptr;
};

/// One row of A against P consecutive panels of B, B(k, p * kPanelWidth + j) = b[p *
/// panel_stride + k * ldb + j], for a product with a single row: one broadcast of A(0, k)
/// serves 2P vector multiply-adds, where micro_kernel's serves 2: a single row has no other rows
/// to share the loads of B with, so each loaded A value must feed more of them. With `descending`,
/// k runs from the last row to the first, so that a recurrence alternating the direction from step
/// to step starts each step on the rows of B it read last, still in L1 (multiply()'s `backwards`).
template <typename Scalar, int P, int KU, bool kUnitStep>
__attribute__((always_inline)) inline void row_kernel(const Scalar* a, Index a_step,
                                                      const Scalar* b, Index panel_stride,
                                                      Index ldb, Index depth, bool descending,
                                                      const RowOutput<Scalar>& out) {
  const Index step = kUnitStep ? 1 : a_step;
  constexpr Index L = kLanes<Scalar>, W = kPanelWidth<Scalar>;
  for_each_depth_block(
      depth, descending,
      [&](Index k0, Index k1, bool first, bool last) __attribute__((always_inline)) {
        Vec<Scalar> acc[KU][P][2];
        EIGENGRU_UNROLL for (int u = 0; u < KU; ++u) EIGENGRU_UNROLL for (int p = 0; p < P; ++p)
            acc[u][p][0] = acc[u][p][1] = Vec<Scalar>{};
        auto row = [&](int u, Index k) __attribute__((always_inline)) {
          const Scalar ak = a[k * step];
          EIGENGRU_UNROLL for (int p = 0; p < P; ++p) {
            acc[u][p][0] += ak * load_vector(b + p * panel_stride + k * ldb);
            acc[u][p][1] += ak * load_vector(b + p * panel_stride + k * ldb + L);
          }
        };
        const Index blocked = k0 + (k1 - k0) / KU * KU;  // rows [blocked, k1) go one at a time
        if (!descending) {
          for (Index k = k0; k < blocked; k += KU)
            EIGENGRU_UNROLL for (int u = 0; u < KU; ++u) row(u, k + u);
          for (Index k = blocked; k < k1; ++k) row(0, k);
        } else {
          for (Index k = k1 - 1; k >= blocked; --k) row(0, k);
          for (Index k = blocked - KU; k >= k0; k -= KU)
            EIGENGRU_UNROLL for (int u = KU - 1; u >= 0; --u) row(u, k + u);
        }
        EIGENGRU_UNROLL for (int p = 0; p < P; ++p) {
          Vec<Scalar> v0 = acc[0][p][0], v1 = acc[0][p][1];
          EIGENGRU_UNROLL for (int u = 1; u < KU; ++u) {
            v0 += acc[u][p][0];
            v1 += acc[u][p][1];
          }
          const bool last_panel = p == P - 1;
          if (last && out.bias != nullptr) {
            const Scalar* bias = last_panel ? out.last_bias : out.bias + p * W;
            v0 += load_vector(bias);
            v1 += load_vector(bias + L);
          }
          const Output<Scalar> panel{out.c + p * W, 0, last_panel ? out.last_ncols : W,
                                     out.accumulate || !first};
          store_row(panel, panel.c, v0, v1);
        }
      });
}

/// micro_kernel for MR rows, its chains split KU ways when the rows alone are too few to hide
/// the multiply-add latency; with kOneChain, never split (see PackedMatrix::project).
template <typename Scalar, int MR, bool kOneChain = false>
__attribute__((always_inline)) inline void kernel_for_rows(const Scalar* a, Index lda, Index a_step,
                                                           const Scalar* b, Index ldb, Index depth,
                                                           const Output<Scalar>& out) {
  constexpr int KU = MR >= 4 || kOneChain ? 1 : (MR == 1 ? 4 : 2);
  if (a_step == 1)
    micro_kernel<Scalar, MR, KU, true>(a, lda, 1, b, ldb, depth, out);
  else
    micro_kernel<Scalar, MR, KU, false>(a, lda, a_step, b, ldb, depth, out);
}

/// The most panels row_kernel takes at once: 2 x 6 = 12 accumulators, one broadcast of A(0, k)
/// for 12 vector multiply-adds.
constexpr int kMaxRowPanels = 6;

/// row_kernel over P panels, 1 <= P <= kMaxRowPanels, with the multiply-add chains split
/// KU ways so that at least 6 accumulators are in flight, and the unit-step specialisation when
/// a_step is 1; with kOneChain, one chain whatever P (see PackedMatrix::project).
template <typename Scalar, int P, bool kOneChain = false>
__attribute__((always_inline)) inline void row_kernel_for_panels(const Scalar* a, Index a_step,
                                                                 const Scalar* b,
                                                                 Index panel_stride, Index ldb,
                                                                 Index depth, bool descending,
                                                                 const RowOutput<Scalar>& out) {
  constexpr int KU = P >= 3 || kOneChain ? 1 : 4 / P;
  if (a_step == 1)
    row_kernel<Scalar, P, KU, true>(a, 1, b, panel_stride, ldb, depth, descending, out);
  else
    row_kernel<Scalar, P, KU, false>(a, a_step, b, panel_stride, ldb, depth, descending, out);
}

/// row_kernel_for_panels with P known only at run time, 1 <= panels <= kMaxRowPanels.
template <typename Scalar, bool kOneChain = false>
__attribute__((always_inline)) inline void row_kernel_for(int panels, const Scalar* a, Index a_step,
                                                          const Scalar* b, Index panel_stride,
                                                          Index ldb, Index depth, bool descending,
                                                          const RowOutput<Scalar>& out) {
  static_assert(kMaxRowPanels == 6);
  auto kernel = [&](auto p) __attribute__((always_inline)) {
    row_kernel_for_panels<Scalar, decltype(p)::value, kOneChain>(a, a_step, b, panel_stride, ldb,
                                                                 depth, descending, out);
  };
  switch (panels) {
    case 6: kernel(std::integral_constant<int, 6>{}); break;
    case 5: kernel(std::integral_constant<int, 5>{}); break;
    case 4: kernel(std::integral_constant<int, 4>{}); break;
    case 3: kernel(std::integral_constant<int, 3>{}); break;
    case 2: kernel(std::integral_constant<int, 2>{}); break;
    case 1: kernel(std::integral_constant<int, 1>{}); break;
    default: break;
  }
}

/// Rows [0, m) of A and C against one panel of B, kRowBlock rows at a time.
template <typename Scalar, bool kOneChain = false>
__attribute__((always_inline)) inline void multiply_rows(const Scalar* a, Index lda, Index a_step,
                                                         Index m, const Scalar* b, Index ldb,
                                                         Index depth, Output<Scalar> out) {
  Index i = 0;
  for (; i + kRowBlock <= m; i += kRowBlock) {
    kernel_for_rows<Scalar, kRowBlock, kOneChain>(a + i * lda, lda, a_step, b, ldb, depth, out);
    out.c += kRowBlock * out.ldc;
  }
  const Scalar* ai = a + i * lda;
  switch (m - i) {
    case 7: kernel_for_rows<Scalar, 7, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    case 6: kernel_for_rows<Scalar, 6, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    case 5: kernel_for_rows<Scalar, 5, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    case 4: kernel_for_rows<Scalar, 4, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    case 3: kernel_for_rows<Scalar, 3, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    case 2: kernel_for_rows<Scalar, 2, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    case 1: kernel_for_rows<Scalar, 1, kOneChain>(ai, lda, a_step, b, ldb, depth, out); break;
    default: break;
  }
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
