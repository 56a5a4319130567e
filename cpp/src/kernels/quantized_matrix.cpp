#include "quantized_matrix.hpp"

#include "micro_kernel.hpp"
#include "quantized_dot.hpp"
#include "quantized_rows.hpp"

#include <algorithm>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace eigengru::EIGENGRU_KERNEL_SET::detail {
namespace {

Index elements_per_group(Precision p) { return p == Precision::kInt8 ? 4 : 2; }

/// What a product needs besides its operand: the panels, their per-row numbers, and how the
/// product is blocked (worked out once: divisions cost a batch-1 step dearly).
struct Product {
  const std::uint8_t* panels;
  Index panel_bytes, groups, rows;
  const float* scales;
  const std::int32_t* offsets;
  Index row_block;  // panels per tile for a single operand row
  Index row_chunk;  // operand rows that stay in cache while every panel goes past them
};

#if defined(__AVX512F__) || defined(__AVX2__)
/// One tile's operands: rows [0, MR) of a (lda bytes apart), panels [0, NP) of w; `cols` of
/// the last panel's 16 rows exist.
struct Tile {
  const std::uint8_t* a;
  Index lda;
  const float* a_scales;
  const std::uint8_t* w;
  Index panel_bytes, groups;
  const float* w_scales;
  const std::int32_t* offsets;
  const float* bias;
  float* c;
  Index ldc, cols;
};

using TileFunction = void (*)(const Tile&);

/// Operand rows by panels of a tile of several rows.
struct TileShape {
  Index rows, panels;
};
#endif

#if defined(__AVX512F__)
// ---- AVX-512 products: tiles of MR operand rows by NP panels, held in registers ----------------

__attribute__((always_inline)) inline __mmask16 lane_mask(Index cols) {
  return static_cast<__mmask16>((1u << cols) - 1);
}

/// C for MR rows by NP panels: int8 sums (int32) made (sum - offset) * s_w * s_a + bias,
/// bfloat16 sums (float) + bias.
template <bool kInt8, int MR, int NP>
void tile(const Tile& t) {
  __m512i acc[MR][NP];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[m][p] = _mm512_setzero_si512();  // 0 or 0.0f
  for (Index g = 0; g < t.groups; ++g) {
    __m512i a[MR];  // each row's group, in every lane; then each panel's weights, used at once
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) a[m] = broadcast_group(t.a + m * t.lda, g);
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      const __m512i w = _mm512_load_si512(t.w + p * t.panel_bytes + g * kPanelGroupBytes);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc[m][p] = add_dot<kInt8>(acc[m][p], a[m], w);
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    const __mmask16 mask = p == NP - 1 ? lane_mask(t.cols) : __mmask16(0xffff);
    const __m512 bias = t.bias != nullptr
                            ? _mm512_maskz_loadu_ps(mask, t.bias + p * kQuantizedPanelRows)
                            : _mm512_setzero_ps();
    float* c = t.c + p * kQuantizedPanelRows;
    const PanelRows rows = panel_rows<kInt8>(kInt8 ? t.w_scales + p * kQuantizedPanelRows : nullptr,
                                             kInt8 ? t.offsets + p * kQuantizedPanelRows : nullptr);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
      _mm512_mask_storeu_ps(c + m * t.ldc, mask,
                            panel_sums<kInt8>(acc[m][p], rows, kInt8 ? t.a_scales[m] : 0.0f, bias));
  }
}

template <int MR, int NP>
constexpr void (*int8_tile)(const Tile&) = tile<true, MR, NP>;
template <int MR, int NP>
constexpr void (*bfloat16_tile)(const Tile&) = tile<false, MR, NP>;

// Up to 6 rows by 4 panels (24 sums in registers, beside the 6 rows' operands and a panel's
// weights), and a single row by up to 16 panels, whose sums need more independent chains to
// hide the instructions' latency. 6 rows rather than 4 read each panel's weights, which stream
// from L2, once for 24 dot products instead of 16.
#define EIGENGRU_TILES_OF(tile, MR) {tile<MR, 1>, tile<MR, 2>, tile<MR, 3>, tile<MR, 4>}
#define EIGENGRU_TILE_TABLE(tile)                                                      \
  {EIGENGRU_TILES_OF(tile, 1), EIGENGRU_TILES_OF(tile, 2), EIGENGRU_TILES_OF(tile, 3), \
   EIGENGRU_TILES_OF(tile, 4), EIGENGRU_TILES_OF(tile, 5), EIGENGRU_TILES_OF(tile, 6)}
#define EIGENGRU_ROW_TILES(tile)                                                 \
  {tile<1, 1>,  tile<1, 2>,  tile<1, 3>,  tile<1, 4>,  tile<1, 5>,  tile<1, 6>,  \
   tile<1, 7>,  tile<1, 8>,  tile<1, 9>,  tile<1, 10>, tile<1, 11>, tile<1, 12>, \
   tile<1, 13>, tile<1, 14>, tile<1, 15>, tile<1, 16>}
constexpr int kTileRows = 6, kTilePanels = 4, kRowTilePanels = 16;
constexpr TileShape tile_shape(bool) { return {kTileRows, kTilePanels}; }
constexpr TileFunction kInt8Tiles[kTileRows][kTilePanels] = EIGENGRU_TILE_TABLE(int8_tile);
constexpr TileFunction kBfloat16Tiles[kTileRows][kTilePanels] = EIGENGRU_TILE_TABLE(bfloat16_tile);
constexpr TileFunction kInt8RowTiles[kRowTilePanels] = EIGENGRU_ROW_TILES(int8_tile);
constexpr TileFunction kBfloat16RowTiles[kRowTilePanels] = EIGENGRU_ROW_TILES(bfloat16_tile);
#undef EIGENGRU_TILES_OF
#undef EIGENGRU_TILE_TABLE
#undef EIGENGRU_ROW_TILES

/// Whether this CPU has the dot-product instruction of a precision.
bool has_dot_product(Precision p) {
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  static const bool bf16 = __builtin_cpu_supports("avx512bf16");
  return p == Precision::kInt8 ? vnni : bf16;
}

/// The tile for mr rows by np panels (a single operand row: n == 1).
TileFunction tile_function(bool int8, Index n, Index mr, Index np) {
  return n == 1 ? (int8 ? kInt8RowTiles : kBfloat16RowTiles)[np - 1]
                : (int8 ? kInt8Tiles : kBfloat16Tiles)[mr - 1][np - 1];
}

#elif defined(__AVX2__)
// ---- AVX2 products: tiles of MR operand rows by NP panels, 2 registers a panel ----------------

/// The lanes [0, count) of 8.
__attribute__((always_inline)) inline __m256i lanes_below(Index count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// The rows of W that half h (8 rows) of a tile's panel p holds: [first, first + count), count
/// below 8 (masked lanes) in the matrix's last panel, and 0 or less past its last row.
struct HalfRows {
  Index first, count;
  __m256i mask;

  /// p[first, first + count) in the first count lanes.
  __attribute__((always_inline)) __m256 load(const float* p) const {
    return count == 8 ? _mm256_loadu_ps(p + first) : _mm256_maskload_ps(p + first, mask);
  }
  /// The first count lanes of v to p[first, first + count).
  __attribute__((always_inline)) void store(float* p, __m256 v) const {
    if (count == 8)
      _mm256_storeu_ps(p + first, v);
    else
      _mm256_maskstore_ps(p + first, mask, v);
  }
};

template <int NP>
__attribute__((always_inline)) inline HalfRows half_rows(const Tile& t, int p, int h) {
  const Index count = p < NP - 1 ? 8 : std::min<Index>(8, t.cols - h * 8);
  return {p * kQuantizedPanelRows + h * 8, count, lanes_below(count)};
}

/// C for MR rows by NP panels: the int8 sums times s_w * s_a, plus the bias. Each operand
/// group is broadcast once, with its magnitude, for 2 NP weight vectors.
template <int MR, int NP>
void int8_tile(const Tile& t) {
  __m256i acc[MR][NP][2];
  EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) EIGENGRU_UNROLL for (int p = 0; p < NP; ++p)
      acc[m][p][0] = acc[m][p][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (Index g = 0; g < t.groups; ++g) {
    __m256i a[MR], magnitude[MR];
    EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) {
      a[m] = broadcast_group(t.a + m * t.lda, g);
      magnitude[m] = _mm256_abs_epi8(a[m]);
    }
    EIGENGRU_UNROLL for (int p = 0; p < NP; ++p) EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(
          t.w + p * t.panel_bytes + g * kPanelGroupBytes + h * 32));
      EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) acc[m][p][h] =
          add_int8_dot(acc[m][p][h], magnitude[m], a[m], w, ones);
    }
  }
  EIGENGRU_UNROLL for (int p = 0; p < NP; ++p) EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) {
    const HalfRows half = half_rows<NP>(t, p, h);
    if (half.count <= 0) continue;
    const __m256 bias = t.bias == nullptr ? _mm256_setzero_ps() : half.load(t.bias);
    const __m256 w_scale = _mm256_loadu_ps(t.w_scales + half.first);  // padded to whole panels
    EIGENGRU_UNROLL for (int m = 0; m < MR; ++m)
        half.store(t.c + m * t.ldc, int8_sums(acc[m][p][h], w_scale, t.a_scales[m], bias));
  }
}

/// C for MR rows by NP panels of bfloat16 products, summed as the float kernel sums the values
/// the weights and operands stand for (PackedMatrix::project): one chain per block of the depth
/// (add_bfloat16_dot), each block's sums added to C in order, the bias to the last block's sums
/// first. The same bits as the float product, from half the weight bytes.
template <int MR, int NP>
void bfloat16_tile(const Tile& t) {
  static_assert(MR == 1 || NP == 1, "several rows take one panel at a time");
  const float* a[MR];
  EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) a[m] =
      reinterpret_cast<const float*>(t.a + m * t.lda);
  for (Index g0 = 0; g0 < t.groups; g0 += kBfloat16BlockGroups) {
    const Index g1 = std::min(t.groups, g0 + kBfloat16BlockGroups);
    const bool first = g0 == 0, last = g1 == t.groups;
    PanelSums acc[MR][NP];  // values, never referenced: GCC keeps them in registers then
    EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) EIGENGRU_UNROLL for (int p = 0; p < NP; ++p)
        acc[m][p] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}};
    for (Index g = g0; g < g1; ++g) {
      auto weights = [&](int p, int h) __attribute__((always_inline)) {
        return bfloat16_pair(_mm256_load_si256(reinterpret_cast<const __m256i*>(
            t.w + p * t.panel_bytes + g * kPanelGroupBytes + h * 32)));
      };
      if constexpr (MR == 1) {  // one operand pair for every panel
        const Bfloat16Pair pair = broadcast_pair(t.a, g);
        EIGENGRU_UNROLL for (int p = 0; p < NP; ++p)
            acc[0][p] = {{add_bfloat16_dot(acc[0][p].half[0], pair, weights(p, 0)),
                          add_bfloat16_dot(acc[0][p].half[1], pair, weights(p, 1))}};
      } else {  // the panel's even weights for every row, then its odd ones
        const __m256i* w = reinterpret_cast<const __m256i*>(t.w + g * kPanelGroupBytes);
        const __m256 even0 = bfloat16_even(_mm256_load_si256(w));
        const __m256 even1 = bfloat16_even(_mm256_load_si256(w + 1));
        EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) acc[m][0] =
            add_broadcast_products(acc[m][0], a[m] + 2 * g, even0, even1);
        const __m256 odd0 = bfloat16_odd(_mm256_load_si256(w));
        const __m256 odd1 = bfloat16_odd(_mm256_load_si256(w + 1));
        EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) acc[m][0] =
            add_broadcast_products(acc[m][0], a[m] + 2 * g + 1, odd0, odd1);
      }
    }
    EIGENGRU_UNROLL for (int p = 0; p < NP; ++p) EIGENGRU_UNROLL for (int h = 0; h < 2; ++h) {
      const HalfRows half = half_rows<NP>(t, p, h);
      if (half.count <= 0) continue;
      const bool with_bias = last && t.bias != nullptr;
      const __m256 bias = with_bias ? half.load(t.bias) : _mm256_setzero_ps();
      EIGENGRU_UNROLL for (int m = 0; m < MR; ++m) {
        float* c = t.c + m * t.ldc;
        __m256 v = acc[m][p].half[h];
        if (with_bias) v = _mm256_add_ps(v, bias);
        if (!first) v = _mm256_add_ps(v, half.load(c));
        half.store(c, v);
      }
    }
  }
}

// int8: up to 2 rows by 2 panels (8 sums, 2 operands with their magnitudes, the weights, the
// constant and a product: 15 of the 16 registers); tiles of 1 x 4, 3 x 1 and 4 x 1 were
// slower. bfloat16: up to 6 rows by 1 panel (12 sums, one widened half of the group's weights,
// an operand broadcast and the mask), every row's even products before its odd ones; with 4 or
// 5 rows (8 or 10 sums) each sum's two dependent multiply-adds a group left the multiply-add
// units waiting. A single row: up to 4 panels.
constexpr int kRowTilePanels = 4;
constexpr TileShape tile_shape(bool int8) { return int8 ? TileShape{2, 2} : TileShape{6, 1}; }
constexpr TileFunction kInt8Tiles[2][2] = {{int8_tile<1, 1>, int8_tile<1, 2>},
                                           {int8_tile<2, 1>, int8_tile<2, 2>}};
constexpr TileFunction kBfloat16Tiles[6] = {bfloat16_tile<1, 1>, bfloat16_tile<2, 1>,
                                            bfloat16_tile<3, 1>, bfloat16_tile<4, 1>,
                                            bfloat16_tile<5, 1>, bfloat16_tile<6, 1>};
constexpr TileFunction kInt8RowTiles[kRowTilePanels] = {int8_tile<1, 1>, int8_tile<1, 2>,
                                                        int8_tile<1, 3>, int8_tile<1, 4>};
constexpr TileFunction kBfloat16RowTiles[kRowTilePanels] = {
    bfloat16_tile<1, 1>, bfloat16_tile<1, 2>, bfloat16_tile<1, 3>, bfloat16_tile<1, 4>};

/// Both precisions: int8 from vpmaddubsw, bfloat16 from float multiply-adds.
bool has_dot_product(Precision) { return true; }

TileFunction tile_function(bool int8, Index n, Index mr, Index np) {
  if (n == 1) return (int8 ? kInt8RowTiles : kBfloat16RowTiles)[np - 1];
  return int8 ? kInt8Tiles[mr - 1][np - 1] : kBfloat16Tiles[mr - 1];
}
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
void multiply_tiles(const Product& w, Precision precision, const QuantizedRows& a, Index n,
                    float* c, Index ldc, const float* bias) {
  const bool int8 = precision == Precision::kInt8;
  const TileShape shape = tile_shape(int8);
  const Index panels = (w.rows + kQuantizedPanelRows - 1) / kQuantizedPanelRows;
  const Index block = n == 1 ? w.row_block : shape.panels, chunk = w.row_chunk;
  for (Index r0 = 0; r0 < n; r0 += chunk) {
    const Index r1 = std::min(n, r0 + chunk);
    for (Index p = 0; p < panels; p += block) {
      const Index np = std::min(block, panels - p);
      Tile t{nullptr,
             a.stride,
             nullptr,
             w.panels + p * w.panel_bytes,
             w.panel_bytes,
             w.groups,
             int8 ? w.scales + p * kQuantizedPanelRows : nullptr,
             int8 ? w.offsets + p * kQuantizedPanelRows : nullptr,
             bias != nullptr ? bias + p * kQuantizedPanelRows : nullptr,
             nullptr,
             ldc,
             std::min(kQuantizedPanelRows, w.rows - (p + np - 1) * kQuantizedPanelRows)};
      for (Index m = r0; m < r1; m += shape.rows) {
        const Index mr = std::min<Index>(shape.rows, r1 - m);
        t.a = a.data.data() + m * a.stride;
        t.a_scales = int8 ? a.scales.data() + m : nullptr;
        t.c = c + m * ldc + p * kQuantizedPanelRows;
        tile_function(int8, n, mr, np)(t);
      }
    }
  }
}
#else
bool has_dot_product(Precision) { return false; }
#endif

}  // namespace

QuantizedPanels::QuantizedPanels(const QuantizedMatrix& m, Index first, Index count)
    : precision_(m.precision),
      dot_product_(has_dot_product(m.precision)),
      rows_(count),
      depth_(m.cols) {
  if (!dot_product_) {  // the values the weights stand for, for the float product
    RowMatrix<float> values(rows_, depth_);
    for (Index j = 0; j < rows_; ++j)
      for (Index k = 0; k < depth_; ++k) values(j, k) = m.value(first + j, k);
    dequantized_.pack(values.data(), depth_, rows_, 1, depth_);  // B(k, j) = W(j, k)
    return;
  }
  const Index per_group = elements_per_group(precision_);
  groups_ = (depth_ + per_group - 1) / per_group;
  panels_count_ = (rows_ + kQuantizedPanelRows - 1) / kQuantizedPanelRows;
#if defined(__AVX512F__) || defined(__AVX2__)
  // A single row takes the panels in as few tiles as it can, of equal sizes; several rows go
  // in chunks of about 128 KB.
  const Index blocks = std::max<Index>(1, (panels_count_ + kRowTilePanels - 1) / kRowTilePanels);
  row_block_ = (panels_count_ + blocks - 1) / blocks;
  const Index tile_rows = tile_shape(precision_ == Precision::kInt8).rows;
  row_chunk_ = std::max<Index>(
      tile_rows, (Index{128} << 10) / std::max<Index>(1, row_bytes()) / tile_rows * tile_rows);
#endif
  panels_.assign(panels_count_ * panel_bytes(), 0);
  const Index padded_rows = panels_count_ * kQuantizedPanelRows;
  for (Index j = 0; j < rows_; ++j) {
    const Index p = j / kQuantizedPanelRows, lane = j % kQuantizedPanelRows;
    std::uint8_t* panel = panels_.data() + p * panel_bytes() + lane * kGroupBytes;
    for (Index k = 0; k < depth_; ++k) {
      std::uint8_t* group = panel + (k / per_group) * kPanelGroupBytes;
      const Index source = (first + j) * depth_ + k;
      if (precision_ == Precision::kInt8) {
        std::memcpy(group + k % per_group, &m.int8[source], 1);
      } else {
        std::memcpy(group + 2 * (k % per_group), &m.bfloat16[source], 2);
      }
    }
  }
  if (precision_ == Precision::kInt8) {
    scales_.assign(padded_rows, 0.0f);
    offsets_.assign(padded_rows, 0);
    for (Index j = 0; j < rows_; ++j) {
      scales_[j] = m.scales[first + j];
      std::int32_t sum = 0;
      for (Index k = 0; k < depth_; ++k) sum += m.int8[(first + j) * depth_ + k];
      offsets_[j] = kInt8OperandZero * sum;
    }
  }
}

void QuantizedPanels::reserve(QuantizedRows& rows, Index n) const {
  if (!dot_product_) {
    if (static_cast<Index>(rows.values.size()) < n * depth_) rows.values.resize(n * depth_);
    return;
  }
  rows.stride = row_bytes();
  if (static_cast<Index>(rows.data.size()) < n * rows.stride) rows.data.resize(n * rows.stride);
  if (precision_ == Precision::kInt8 && static_cast<Index>(rows.scales.size()) < n)
    rows.scales.resize(n);
}

void QuantizedPanels::quantize(const float* a, Index lda, Index n, QuantizedRows& rows,
                               Index first) const noexcept {
  const Index K = depth_;
  if (!dot_product_) {
    for (Index i = 0; i < n; ++i)
      value_row(precision_, a + i * lda, K, rows.values.data() + (first + i) * K);
    return;
  }
#if defined(__AVX512F__) || defined(__AVX2__)
  const Index padded = groups_ * elements_per_group(precision_);
  for (Index i = 0; i < n; ++i) {
    std::uint8_t* row = rows.data.data() + (first + i) * rows.stride;
    if (precision_ == Precision::kBfloat16) {
#if defined(__AVX512F__)
      bfloat16_row(a + i * lda, K, padded, row);
#else
      bfloat16_value_row(a + i * lda, K, padded, reinterpret_cast<float*>(row));
#endif
      continue;
    }
    rows.scales[first + i] = int8_row(a + i * lda, K, padded, row);
  }
#endif
}

void QuantizedPanels::multiply(const QuantizedRows& a, Index n, float* c, Index ldc,
                               const float* bias) const noexcept {
  // project(): each row of C one chain over the depth, the same bits alone or among others
  if (!dot_product_) return dequantized_.project(a.values.data(), depth_, n, c, ldc, bias);
#if defined(__AVX512F__) || defined(__AVX2__)
  multiply_tiles({panels_.data(), panel_bytes(), groups_, rows_, scales_.data(), offsets_.data(),
                  row_block_, row_chunk_},
                 precision_, a, n, c, ldc, bias);
#endif
}

const char* QuantizedPanels::kernel(Precision precision) {
  if (!has_dot_product(precision)) return "portable";
#if defined(__AVX512F__)
  return precision == Precision::kInt8 ? "avx512-vnni" : "avx512-bf16";
#else
  return precision == Precision::kInt8 ? "avx2-maddubs" : "avx2-fma";
#endif
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
