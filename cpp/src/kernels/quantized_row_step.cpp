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
                                                     __m256 (&out)[3][2]) {
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
    out[g][h] = int8_sums(acc[g][h], _mm256_loadu_ps(m.scales(p) + h * 8), a_scale, b);
  }
}

__attribute__((always_inline)) inline Chunk<float> chunk(__m256 v) {
  Chunk<float> c;
  _mm256_storeu_ps(c.data(), v);
  return c;
}

/// The step for int8 layers, one panel (16 units) at a time.
void row_step(const QuantizedLayerWeights& w, const QuantizedRows* input, const float* gx,
              const QuantizedRows& state, float* h) {
  const Index H = w.hidden_size, stride = H / kQuantizedPanelRows;
  const FullChunk<float> len;
  for (Index v = 0; v < stride; ++v) {
    __m256 x[3][2], s[3][2];
    if (input != nullptr) {
      gate_sums(w.w_ih, v, stride, input->data.data(), input->scales[0], w.input_bias.data(), x);
    } else {
      EIGENGRU_UNROLL for (int g = 0; g < 3; ++g)
          EIGENGRU_UNROLL for (int half = 0; half < 2; ++half) x[g][half] =
              _mm256_loadu_ps(gx + g * H + v * kQuantizedPanelRows + half * 8);
    }
    gate_sums(w.w_hh, v, stride, state.data.data(), state.scales[0], nullptr, s);
    EIGENGRU_UNROLL for (int half = 0; half < 2; ++half) {
      const Index j = v * kQuantizedPanelRows + half * 8;
      const ResetAfterChunk<float> gates(chunk(x[0][half]), chunk(x[1][half]), chunk(x[2][half]),
                                         chunk(s[0][half]), chunk(s[1][half]), chunk(s[2][half]),
                                         w.bias_hn_or_null(), j, len, load(h, j, len),
                                         StandardFunctions<float>{});
      store(h, j, len, gates.h_next);
    }
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
  row_step(w, input, gx, state, h);  // int8: the only precision with a kernel here
#else
  (void)w, (void)input, (void)gx, (void)state, (void)h;
#endif
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
