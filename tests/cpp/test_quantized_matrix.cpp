// The quantized products (cpp/src/kernels/quantized_matrix.hpp) against their arithmetic done
// here independently: each operand row quantized to q = nearbyint(x * 127 / max|x|), each sum
// of q times the int8 weights exact in 64-bit integers, then sum * (s_w * s_a) + bias. A
// dot-product kernel (AVX-512 VNNI, AVX2's vpmaddubsw with vpmaddwd) must give exactly that,
// bit for bit; the portable products (float sums of the same values) must come within float
// rounding of it. Every tile of each kernel: 1 to 9 operand rows, output rows off the 16-row
// panels and a last panel of 1 to 16 rows, depths off the 4-value groups, with and without a
// bias; weights and operands at +-127 with matching signs, where a pair of products sums to
// 2 * 127 * 127 (unsigned operands with an offset would saturate vpmaddubsw's int16); a row of
// zeros and a row with a NaN.
//
// bfloat16 against the exact sums (in double) of the values the weights and the rounded
// operands stand for, to the float sums' rounding; the avx2 kernel (float multiply-adds on
// weights widened in registers) and the portable one must moreover give the float kernel's
// sums on those values bit for bit. Compiled once per kernel set with the library's internal
// headers.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "eigengru/quantized.hpp"
#include "kernel_set_test.hpp"
#include "packed_matrix.hpp"
#include "quantized_matrix.hpp"

namespace {

using eigengru::Index;
using eigengru::Precision;
using eigengru::QuantizedMatrix;
using eigengru_test::check;
namespace detail = kernels::detail;

/// Row i of C = x W^T + bias, for x's rows quantized as the int8 contract says.
std::vector<float> expected_product(const QuantizedMatrix& w, const std::vector<float>& x, Index n,
                                    const float* bias) {
  const Index N = w.rows, K = w.cols;
  std::vector<float> c(n * N);
  for (Index i = 0; i < n; ++i) {
    const float* row = x.data() + i * K;
    float largest = 0.0f;
    bool nan = false;
    for (Index k = 0; k < K; ++k) {
      nan = nan || std::isnan(row[k]);
      largest = std::fmax(largest, std::fabs(row[k]));
    }
    const float s_a = nan ? std::numeric_limits<float>::quiet_NaN() : largest / 127.0f;
    std::vector<std::int64_t> q(K, 0);
    if (!nan && largest > 0.0f)
      for (Index k = 0; k < K; ++k)
        q[k] = static_cast<std::int64_t>(std::nearbyint(row[k] * (127.0f / largest)));
    for (Index j = 0; j < N; ++j) {
      std::int64_t sum = 0;
      for (Index k = 0; k < K; ++k) sum += q[k] * w.int8[j * K + k];
      c[i * N + j] =
          std::fma(static_cast<float>(sum), w.scales[j] * s_a, bias != nullptr ? bias[j] : 0.0f);
    }
  }
  return c;
}

/// The product through QuantizedPanels, as a layer runs it: quantize the rows, multiply.
std::vector<float> product(const QuantizedMatrix& w, const std::vector<float>& x, Index n,
                           const float* bias) {
  const detail::QuantizedPanels panels(w, 0, w.rows);
  detail::QuantizedRows rows;
  panels.reserve(rows, n);
  panels.quantize(x.data(), w.cols, n, rows);
  const Index ldc = w.rows + 3;  // rows of C apart by more than their length
  std::vector<float> c(n * ldc, -7.0f);
  panels.multiply(rows, n, c.data(), ldc, bias);
  std::vector<float> out(n * w.rows);
  bool padding_kept = true;
  for (Index i = 0; i < n; ++i) {
    std::memcpy(out.data() + i * w.rows, c.data() + i * ldc, w.rows * sizeof(float));
    for (Index j = w.rows; j < ldc; ++j) padding_kept = padding_kept && c[i * ldc + j] == -7.0f;
  }
  check(padding_kept, "the product writes nothing past a row of C");
  return out;
}

void compare(const std::vector<float>& got, const std::vector<float>& want, bool exact, Index K,
             const std::string& what) {
  bool ok = got.size() == want.size();
  for (std::size_t e = 0; ok && e < got.size(); ++e) {
    if (std::isnan(want[e])) {
      ok = std::isnan(got[e]);
    } else if (exact) {
      ok = got[e] == want[e];
    } else {  // float sums of K products of values up to the largest row's: relative to that
      ok = std::fabs(got[e] - want[e]) <=
           1e-6f * static_cast<float>(K) * (1.0f + std::fabs(want[e]));
    }
    if (!ok)
      std::printf("  at %zu: %.9g, expected %.9g\n", e, static_cast<double>(got[e]),
                  static_cast<double>(want[e]));
  }
  check(ok, what + (exact ? ", bit for bit" : ", to float rounding"));
}

/// Random weights (N x K, about a trained layer's size), operand rows (n x K) and a bias.
struct Problem {
  std::vector<float> w, x, bias;
};

Problem random_problem(Index N, Index K, Index n, std::mt19937& gen) {
  std::normal_distribution<float> normal;
  Problem p{std::vector<float>(N * K), std::vector<float>(n * K), std::vector<float>(N)};
  for (auto& v : p.w) v = 0.2f * normal(gen);
  for (auto& v : p.x) v = normal(gen);
  for (auto& v : p.bias) v = normal(gen);
  return p;
}

void test_shape(Index N, Index K, Index n, bool with_bias, std::mt19937& gen) {
  const auto [w, x, bias] = random_problem(N, K, n, gen);
  const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), N, K, Precision::kInt8);
  const float* b = with_bias ? bias.data() : nullptr;
  const bool exact = detail::QuantizedPanels(q, 0, N).dot_product();
  compare(product(q, x, n, b), expected_product(q, x, n, b), exact, K,
          "N=" + std::to_string(N) + " K=" + std::to_string(K) + " n=" + std::to_string(n) +
              (with_bias ? " with a bias" : ""));
}

/// Weights and operands at +-127 with the same signs: every product is 127 * 127.
void test_largest_values(std::mt19937& gen) {
  const Index N = 19, K = 260, n = 3;
  std::uniform_int_distribution<int> coin(0, 1);
  std::vector<float> signs(K), w(N * K), x(n * K);
  for (auto& s : signs) s = coin(gen) ? 1.0f : -1.0f;
  for (Index j = 0; j < N; ++j)
    for (Index k = 0; k < K; ++k) w[j * K + k] = (j % 2 ? -0.5f : 0.25f) * signs[k];
  for (Index i = 0; i < n; ++i)
    for (Index k = 0; k < K; ++k) x[i * K + k] = (i + 1.0f) * signs[k];
  const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), N, K, Precision::kInt8);
  bool extreme = true;
  for (const std::int8_t v : q.int8) extreme = extreme && (v == 127 || v == -127);
  check(extreme, "the weights quantize to +-127");
  const std::vector<float> want = expected_product(q, x, n, nullptr);
  check(want[0] == 127.0f * 127.0f * K * q.scales[0] * (1.0f / 127.0f),
        "the oracle sums every product as 127 * 127");
  compare(product(q, x, n, nullptr), want, detail::QuantizedPanels(q, 0, N).dot_product(), K,
          "weights and operands at +-127");
}

/// A row of zeros gives the bias; a row with a NaN gives NaN everywhere; the int8 row beside
/// them, the oracle's sums.
void test_special_rows(Precision precision, std::mt19937& gen) {
  const Index N = 21, K = 37, n = 3;
  std::normal_distribution<float> normal;
  std::vector<float> w(N * K), x(n * K), bias(N);
  for (auto& v : w) v = normal(gen);
  for (auto& v : x) v = normal(gen);
  for (auto& v : bias) v = normal(gen);
  for (Index k = 0; k < K; ++k) x[K + k] = 0.0f;
  x[2 * K + 33] = std::numeric_limits<float>::quiet_NaN();
  const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), N, K, precision);
  const std::vector<float> got = product(q, x, n, bias.data());
  bool zeros_give_bias = true, nan_everywhere = true;
  for (Index j = 0; j < N; ++j) {
    zeros_give_bias = zeros_give_bias && got[N + j] == bias[j];
    nan_everywhere = nan_everywhere && std::isnan(got[2 * N + j]);
  }
  const std::string name = eigengru::precision_name(precision);
  check(zeros_give_bias, name + ": a row of zeros gives the bias");
  check(nan_everywhere, name + ": a row with a NaN gives NaN in every sum");
  if (precision == Precision::kInt8)
    compare(std::vector<float>(got.begin(), got.begin() + N),
            expected_product(q, std::vector<float>(x.begin(), x.begin() + K), 1, bias.data()),
            detail::QuantizedPanels(q, 0, N).dot_product(), K, "the other row beside them");
}

// ---- bfloat16 ----------------------------------------------------------------------------

/// x rounded to bfloat16 (8 significant bits, to nearest, ties to even), by frexp and nearbyint
/// rather than by bits as the library rounds.
float round_to_bfloat16(float x) {
  if (x == 0.0f || !std::isfinite(x)) return x;
  int e = 0;
  const double m = std::frexp(static_cast<double>(x), &e);  // 0.5 <= |m| < 1
  return static_cast<float>(std::ldexp(std::nearbyint(std::ldexp(m, 8)), e - 8));
}

float bfloat16_value(std::uint16_t bits) {
  const std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
  float f = 0.0f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// C = x Wᵀ + bias over the values of x rounded to bfloat16 and of the weights, in double,
/// with each element's rounding allowance: a float sum of K + 1 terms is within (K + 1) float
/// rounding units of the sum of their magnitudes.
void bfloat16_oracle(const QuantizedMatrix& w, const std::vector<float>& x, Index n,
                     const float* bias, std::vector<double>& want, std::vector<double>& allowed) {
  const Index N = w.rows, K = w.cols;
  want.assign(n * N, 0.0);
  allowed.assign(n * N, 0.0);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < N; ++j) {
      double sum = bias != nullptr ? bias[j] : 0.0, magnitude = std::fabs(sum);
      for (Index k = 0; k < K; ++k) {
        const double term = static_cast<double>(round_to_bfloat16(x[i * K + k])) *
                            bfloat16_value(w.bfloat16[j * K + k]);
        sum += term;
        magnitude += std::fabs(term);
      }
      want[i * N + j] = sum;
      allowed[i * N + j] = static_cast<double>(K + 2) * std::ldexp(1.0, -24) * magnitude;
    }
}

/// The float kernel's product on the values (PackedMatrix::project), the sums that the avx2
/// bfloat16 kernel must repeat bit for bit.
std::vector<float> float_product(const QuantizedMatrix& w, const std::vector<float>& x, Index n,
                                 const float* bias) {
  const Index N = w.rows, K = w.cols;
  std::vector<float> values(N * K), rounded(n * K);
  for (Index e = 0; e < N * K; ++e) values[e] = bfloat16_value(w.bfloat16[e]);
  for (Index e = 0; e < n * K; ++e) rounded[e] = round_to_bfloat16(x[e]);
  kernels::PackedMatrix<float> packed;
  packed.pack(values.data(), K, N, 1, K);  // B(k, j) = W(j, k)
  std::vector<float> c(n * N);
  packed.project(rounded.data(), K, n, c.data(), N, bias);
  return c;
}

void test_bfloat16_shape(Index N, Index K, Index n, bool with_bias, const std::string& kernel,
                         std::mt19937& gen) {
  const auto [w, x, bias] = random_problem(N, K, n, gen);
  const QuantizedMatrix q = QuantizedMatrix::quantize(w.data(), N, K, Precision::kBfloat16);
  const float* b = with_bias ? bias.data() : nullptr;
  const std::vector<float> got = product(q, x, n, b);
  std::vector<double> want, allowed;
  bfloat16_oracle(q, x, n, b, want, allowed);
  const std::string what = "bfloat16 N=" + std::to_string(N) + " K=" + std::to_string(K) +
                           " n=" + std::to_string(n) + (with_bias ? " with a bias" : "");
  bool close = true;
  for (std::size_t e = 0; e < got.size(); ++e)
    if (!(std::fabs(got[e] - want[e]) <= allowed[e])) {
      close = false;
      std::printf("  at %zu: %.9g, expected %.9g +- %.3g\n", e, static_cast<double>(got[e]),
                  want[e], allowed[e]);
    }
  check(close, what + ": within the float sums' rounding of the exact sums");
  // The avx2 kernel and the portable one are float multiply-adds in the float kernel's order;
  // AVX-512's vdpbf16ps rounds in its own way.
  if (kernel == "avx2-fma" || kernel == "portable")
    check(got == float_product(q, x, n, b), what + ": the float kernel's sums, bit for bit");
}

}  // namespace

int main() {
  const std::string kernel = detail::QuantizedPanels::kernel(Precision::kInt8),
                    expected = eigengru_test::expected_quantized_kernel(Precision::kInt8);
  check(kernel == expected, "this set runs the int8 kernel " + expected + ", not " + kernel);
  std::mt19937 gen(11);
  for (const Index N : {1, 7, 16, 17, 40, 100})
    for (const Index K : {1, 3, 4, 5, 31, 64, 129})
      for (const Index n : {1, 2, 3, 5, 9, 10}) test_shape(N, K, n, (N + K + n) % 2 == 0, gen);
  test_shape(3 * 64, 64, 1, true, gen);  // a single row over 12 panels: tiles of several panels
  test_shape(200, 300, 13, true, gen);
  test_largest_values(gen);
  test_special_rows(Precision::kInt8, gen);

  const std::string bf16 = detail::QuantizedPanels::kernel(Precision::kBfloat16),
                    bf16_expected = eigengru_test::expected_quantized_kernel(Precision::kBfloat16);
  check(bf16 == bf16_expected,
        "this set runs the bfloat16 kernel " + bf16_expected + ", not " + bf16);
  for (const Index N : {1, 7, 16, 17, 40, 100})
    for (const Index K : {1, 2, 3, 31, 64, 65, 129, 200})
      for (const Index n : {1, 2, 3, 5, 9, 10})
        test_bfloat16_shape(N, K, n, (N + K + n) % 2 == 0, bf16, gen);
  test_bfloat16_shape(3 * 64, 64, 1, true, bf16, gen);  // a single row over 12 panels
  test_bfloat16_shape(200, 300, 13, true, bf16, gen);
  test_special_rows(Precision::kBfloat16, gen);
  return eigengru_test::finish();
}
