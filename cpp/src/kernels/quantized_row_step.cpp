#include "quantized_row_step.hpp"

#include "cell.hpp"
#include "micro_kernel.hpp"
#include "quantized_dot.hpp"
#include "quantized_layer.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

bool fits_quantized_row_step(const QuantizedLayerWeights& w) {
#if defined(__AVX512F__) || defined(__AVX2__)
  return w.reset_after && !w.functions && w.hidden_size % kQuantizedPanelRows == 0 &&
         w.w_ih.dot_product() && w.w_hh.dot_product();
#else
  (void)w;
  return false;
#endif
}

#if defined(__AVX512F__)
namespace {

/// The sums of one operand row a (int8: with scale a_scale) with panels p0 + g * stride + q of
/// m (g = 0, 1, 2: the r, z and n rows; q < Q), as floats, plus `bias` (3 blocks of `stride`
/// panels' rows) or zero.
template <bool kInt8, int Q>
__attribute__((always_inline)) inline void gate_sums(const QuantizedPanels& m, Index p0,
                                                     Index stride, const std::uint8_t* a,
                                                     float a_scale, const float* bias,
                                                     __m512 (&out)[3][Q]) {
  const std::uint8_t* panels[3][Q];
  __m512i acc[3][Q];
  EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q) {
    panels[g][q] = m.panel(p0 + g * stride + q);
    acc[g][q] = _mm512_setzero_si512();  // 0 or 0.0f
  }
  for (Index k = 0; k < m.groups(); ++k) {
    const __m512i x = broadcast_group(a, k);
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
        acc[g][q] =
            add_dot<kInt8>(acc[g][q], x, _mm512_load_si512(panels[g][q] + k * kPanelGroupBytes));
  }
  EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q) {
    const Index p = p0 + g * stride + q;
    const __m512 b =
        bias != nullptr ? _mm512_loadu_ps(bias + p * kQuantizedPanelRows) : _mm512_setzero_ps();
    const PanelRows rows =
        panel_rows<kInt8>(kInt8 ? m.scales(p) : nullptr, kInt8 ? m.offsets(p) : nullptr);
    out[g][q] = panel_sums<kInt8>(acc[g][q], rows, a_scale, b);
  }
}

__attribute__((always_inline)) inline Chunk<float> chunk(__m512 v) {
  Chunk<float> c;
  _mm512_store_ps(c.data(), v);
  return c;
}

/// Units [16 v0, 16 (v0 + Q)) of the step.
template <bool kInt8, int Q>
__attribute__((always_inline)) inline void row_group(const QuantizedLayerWeights& w, Index v0,
                                                     const QuantizedRows* input, const float* gx,
                                                     const QuantizedRows& state, float* h) {
  const Index H = w.hidden_size, stride = H / kQuantizedPanelRows;
  __m512 x[3][Q], s[3][Q];
  if (input != nullptr) {
    gate_sums<kInt8, Q>(w.w_ih, v0, stride, input->data.data(), kInt8 ? input->scales[0] : 0.0f,
                        w.input_bias.data(), x);
  } else {
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
        x[g][q] = _mm512_loadu_ps(gx + g * H + (v0 + q) * kQuantizedPanelRows);
  }
  gate_sums<kInt8, Q>(w.w_hh, v0, stride, state.data.data(), kInt8 ? state.scales[0] : 0.0f,
                      nullptr, s);
  const FullChunk<float> len;
  EIGENGRU_UNROLL for (int q = 0; q < Q; ++q) {
    const Index j = (v0 + q) * kQuantizedPanelRows;
    const ResetAfterChunk<float> gates(
        chunk(x[0][q]), chunk(x[1][q]), chunk(x[2][q]), chunk(s[0][q]), chunk(s[1][q]),
        chunk(s[2][q]), w.bias_hn_or_null(), j, len, load(h, j, len), StandardFunctions<float>{});
    store(h, j, len, gates.h_next);
  }
}

/// The most panels in a group: 3 x 3 = 9 chains, enough to hide the dot products' latency.
constexpr Index kMaxGroupPanels = 3;

template <bool kInt8>
void row_step(const QuantizedLayerWeights& w, const QuantizedRows* input, const float* gx,
              const QuantizedRows& state, float* h) {
  const Index vectors = w.hidden_size / kQuantizedPanelRows;
  const Index groups = (vectors + kMaxGroupPanels - 1) / kMaxGroupPanels;
  for (Index q = 0; q < groups; ++q) {
    const Index v0 = vectors * q / groups, v1 = vectors * (q + 1) / groups;  // balanced
    static_assert(kMaxGroupPanels == 3);
    switch (v1 - v0) {
      case 3: row_group<kInt8, 3>(w, v0, input, gx, state, h); break;
      case 2: row_group<kInt8, 2>(w, v0, input, gx, state, h); break;
      case 1: row_group<kInt8, 1>(w, v0, input, gx, state, h); break;
      default: break;
    }
  }
}

}  // namespace

#elif defined(__AVX2__)
namespace {

/// The int8 sums of one operand row a (scale a_scale) with panels p0 + g * stride of m (g = 0,
/// 1, 2: the r, z and n rows), each panel's 16 rows as two halves of 8, as floats, plus `bias`
/// (3 blocks of `stride` panels' rows) or zero: 6 chains, all that 16 registers hold beside the
/// operand, its magnitude, the weights and the constant.
__attribute__((always_inline)) inline void gate_sums(const QuantizedPanels& m, Index p0,
                                                     Index stride, const std::uint8_t* a,
                                                     float a_scale, const float* bias,
                                                     __m256 (&out)[3][1][2]) {
  const std::uint8_t* panels[3];
  __m256i acc[3][2];
  EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) {
    panels[g] = m.panel(p0 + g * stride);
    acc[g][0] = acc[g][1] = _mm256_setzero_si256();
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (Index k = 0; k < m.groups(); ++k) {
    const __m256i x = broadcast_group(a, k), magnitude = _mm256_abs_epi8(x);
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) {
      const __m256i w = _mm256_load_si256(
          reinterpret_cast<const __m256i*>(panels[g] + k * kPanelGroupBytes + h * 32));
      acc[g][h] = add_int8_dot(acc[g][h], magnitude, x, w, ones);
    }
  }
  EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) {
    const Index p = p0 + g * stride, first = p * kQuantizedPanelRows + h * 8;
    const __m256 b = bias != nullptr ? _mm256_loadu_ps(bias + first) : _mm256_setzero_ps();
    out[g][0][h] = int8_sums(acc[g][h], _mm256_loadu_ps(m.scales(p) + h * 8), a_scale, b);
  }
}

/// The bfloat16 sums of one operand row a with panels p0 + g * stride + q of m (q < Q), as the
/// tiled product makes them (quantized_matrix.cpp: one chain per block of the depth, each block's
/// sums added to the blocks' before, the bias to the last block's first).
template <int Q>
__attribute__((always_inline)) inline void bfloat16_gate_sums(const QuantizedPanels& m, Index p0,
                                                              Index stride, const std::uint8_t* a,
                                                              const float* bias,
                                                              __m256 (&out)[3][Q][2]) {
  const std::uint8_t* panels[3][Q];
  EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
      panels[g][q] = m.panel(p0 + g * stride + q);
  const Index groups = m.groups();
  for (Index g0 = 0; g0 < groups; g0 += kBfloat16BlockGroups) {
    const Index g1 = std::min(groups, g0 + kBfloat16BlockGroups);
    __m256 acc[3][Q][2];
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
        acc[g][q][0] = acc[g][q][1] = _mm256_setzero_ps();
    // Every sum's even products, then its odd ones (the order of add_bfloat16_dot): one widened
    // weight vector at a time beside the 12 sums, where whole pairs pushed a sum to the stack.
    const __m256i high_halves = bfloat16_high_halves();
    for (Index k = g0; k < g1; ++k) {
      const Bfloat16Pair x = broadcast_pair(a, k);
      auto weights = [&](int g, int q, int h) __attribute__((always_inline)) {
        return _mm256_load_si256(
            reinterpret_cast<const __m256i*>(panels[g][q] + k * kPanelGroupBytes + h * 32));
      };
      EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
          EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) acc[g][q][h] =
              _mm256_fmadd_ps(x.even, bfloat16_even(weights(g, q, h)), acc[g][q][h]);
      EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
          EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) acc[g][q][h] =
              _mm256_fmadd_ps(x.odd, bfloat16_odd(weights(g, q, h), high_halves), acc[g][q][h]);
    }
    const bool first = g0 == 0, with_bias = g1 == groups && bias != nullptr;
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
        EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) {
      __m256 v = acc[g][q][h];
      if (with_bias)
        v = _mm256_add_ps(
            v, _mm256_loadu_ps(bias + (p0 + g * stride + q) * kQuantizedPanelRows + h * 8));
      out[g][q][h] = first ? v : _mm256_add_ps(v, out[g][q][h]);
    }
  }
}

__attribute__((always_inline)) inline Chunk<float> chunk(__m256 v) {
  Chunk<float> c;
  _mm256_storeu_ps(c.data(), v);
  return c;
}

/// Units [16 v0, 16 (v0 + Q)) of the step: their sums (int8: one panel at a time, Q = 1), then
/// their gates, 8 units at a time.
template <bool kInt8, int Q>
__attribute__((always_inline)) inline void row_group(const QuantizedLayerWeights& w, Index v0,
                                                     const QuantizedRows* input, const float* gx,
                                                     const QuantizedRows& state, float* h) {
  const Index H = w.hidden_size, stride = H / kQuantizedPanelRows;
  __m256 x[3][Q][2], s[3][Q][2];
  if constexpr (kInt8) {
    static_assert(Q == 1);
    if (input != nullptr)
      gate_sums(w.w_ih, v0, stride, input->data.data(), input->scales[0], w.input_bias.data(), x);
    gate_sums(w.w_hh, v0, stride, state.data.data(), state.scales[0], nullptr, s);
  } else {
    if (input != nullptr)
      bfloat16_gate_sums<Q>(w.w_ih, v0, stride, input->data.data(), w.input_bias.data(), x);
    bfloat16_gate_sums<Q>(w.w_hh, v0, stride, state.data.data(), nullptr, s);
  }
  if (input == nullptr)
    EIGENGRU_UNROLL for (int g = 0; g < 3; ++g) EIGENGRU_UNROLL for (int q = 0; q < Q; ++q)
        EIGENGRU_UNROLL for (int half = 0; half < 2; ++half) x[g][q][half] =
            _mm256_loadu_ps(gx + g * H + (v0 + q) * kQuantizedPanelRows + half * 8);
  const FullChunk<float> len;
  EIGENGRU_UNROLL for (int q = 0; q < Q; ++q) EIGENGRU_UNROLL for (int half = 0; half < 2; ++half) {
    const Index j = (v0 + q) * kQuantizedPanelRows + half * 8;
    const ResetAfterChunk<float> gates(
        chunk(x[0][q][half]), chunk(x[1][q][half]), chunk(x[2][q][half]), chunk(s[0][q][half]),
        chunk(s[1][q][half]), chunk(s[2][q][half]), w.bias_hn_or_null(), j, len, load(h, j, len),
        StandardFunctions<float>{});
    store(h, j, len, gates.h_next);
  }
}

/// bfloat16 panels in groups of up to 2 (12 chains: each group of the depth is two dependent
/// multiply-adds, so 6 chains would leave the multiply-adds waiting on each other).
constexpr Index kMaxBfloat16GroupPanels = 2;

void row_step(const QuantizedLayerWeights& w, const QuantizedRows* input, const float* gx,
              const QuantizedRows& state, float* h) {
  const Index vectors = w.hidden_size / kQuantizedPanelRows;
  if (w.w_hh.precision() == Precision::kInt8) {
    for (Index v = 0; v < vectors; ++v) row_group<true, 1>(w, v, input, gx, state, h);
    return;
  }
  const Index groups = (vectors + kMaxBfloat16GroupPanels - 1) / kMaxBfloat16GroupPanels;
  for (Index q = 0; q < groups; ++q) {
    const Index v0 = vectors * q / groups, v1 = vectors * (q + 1) / groups;  // balanced
    static_assert(kMaxBfloat16GroupPanels == 2);
    if (v1 - v0 == 2)
      row_group<false, 2>(w, v0, input, gx, state, h);
    else
      row_group<false, 1>(w, v0, input, gx, state, h);
  }
}

}  // namespace
#endif

void quantized_row_step(const QuantizedLayerWeights& w, const QuantizedRows* input, const float* gx,
                        const QuantizedRows& state, float* h) noexcept {
#if defined(__AVX512F__)
  if (w.w_hh.precision() == Precision::kInt8)
    row_step<true>(w, input, gx, state, h);
  else
    row_step<false>(w, input, gx, state, h);
#elif defined(__AVX2__)
  row_step(w, input, gx, state, h);
#else
  (void)w, (void)input, (void)gx, (void)state, (void)h;
#endif
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
