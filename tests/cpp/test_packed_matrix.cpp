// PackedMatrix against a plain triple loop in double: every kernel path (a single row, whose
// panels go up to 6 at once; several rows in blocks of 8 and a remainder), both layouts (narrow
// matrices row by row, wide or deep ones panel by panel), an odd panel count and a
// last panel cut short, a depth not a multiple of the unrolling, bias, accumulation, a
// transposed and strided A (a_step), both panel orders, products over a depth range, and the
// input projection's product, whose rows do not depend on the rows computed with them.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "kernel_set_test.hpp"
#include "packed_matrix.hpp"

namespace {

using eigengru::Index;
using eigengru_test::check;

struct Case {
  Index m, k, n;
};

/// C (m x n) = (accumulate ? C : 0) + A(:, k0:k1) B(k0:k1, :) + bias, A(i, k) = a[i * lda + k *
/// a_step], B(k, j) = b[k * n + j], in double.
std::vector<double> reference(const std::vector<float>& a, Index lda, Index a_step,
                              const std::vector<float>& b, const Case& c, Index k0, Index k1,
                              const std::vector<float>& start, bool accumulate, const float* bias) {
  std::vector<double> out(c.m * c.n);
  for (Index i = 0; i < c.m; ++i)
    for (Index j = 0; j < c.n; ++j) {
      double sum = accumulate ? start[i * c.n + j] : 0.0;
      if (bias != nullptr) sum += bias[j];
      for (Index k = k0; k < k1; ++k) sum += double(a[i * lda + k * a_step]) * b[k * c.n + j];
      out[i * c.n + j] = sum;
    }
  return out;
}

/// Largest error relative to the largest reference value.
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0, scale = 1e-30;
  for (std::size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return worst / scale;
}

std::vector<float> uniform_floats(Index size, std::mt19937& gen) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(size);
  for (auto& e : v) e = u(gen);
  return v;
}

std::string shape_text(const Case& c) {
  return std::to_string(c.m) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n);
}

/// B (k x n, row-major) packed.
kernels::PackedMatrix<float> packed_rows(const std::vector<float>& b, const Case& c) {
  kernels::PackedMatrix<float> packed;
  packed.pack(b.data(), c.k, c.n, c.n, 1);
  return packed;
}

void test_case(const Case& c, std::mt19937& gen) {
  auto random = [&](Index size) { return uniform_floats(size, gen); };
  const std::vector<float> b = random(c.k * c.n), bias = random(c.n), start = random(c.m * c.n);
  const kernels::PackedMatrix<float> packed = packed_rows(b, c);
  const std::string shape = shape_text(c);
  {  // packed from Bᵀ (a weight matrix's own layout): the same matrix, so the same products
    std::vector<float> bt(c.n * c.k);
    for (Index k = 0; k < c.k; ++k)
      for (Index j = 0; j < c.n; ++j) bt[j * c.k + k] = b[k * c.n + j];
    kernels::PackedMatrix<float> from_transposed;
    from_transposed.pack(bt.data(), c.k, c.n, 1, c.k);
    const std::vector<float> a = random(c.m * c.k);
    std::vector<float> want(c.m * c.n), got(c.m * c.n);
    packed.multiply(a.data(), c.k, c.m, want.data(), c.n, false);
    from_transposed.multiply(a.data(), c.k, c.m, got.data(), c.n, false);
    check(got == want, "pack from Bᵀ " + shape + ": another product");
  }
  for (const bool transposed : {false, true}) {
    // Row-major A (m x k), or A inside its transpose, stored with rows of m + 2 (a view of
    // the first m columns of a k x (m + 2) matrix): lda = 1, a_step = m + 2.
    const std::vector<float> a = random((c.m + 2) * c.k);
    const Index lda = transposed ? 1 : c.k, a_step = transposed ? c.m + 2 : 1;
    for (const bool backwards : {false, true})
      for (const bool accumulate : {false, true})
        for (const bool with_bias : {false, true}) {
          std::vector<float> got = start;
          packed.multiply(a.data(), lda, c.m, got.data(), c.n, accumulate, a_step,
                          with_bias ? bias.data() : nullptr, backwards);
          const double err =
              relative_error(got, reference(a, lda, a_step, b, c, 0, c.k, start, accumulate,
                                            with_bias ? bias.data() : nullptr));
          check(err < 1e-5, "multiply " + shape + (transposed ? " transposed A" : "") +
                                (backwards ? " backwards" : "") +
                                (accumulate ? " accumulate" : "") + (with_bias ? " bias" : "") +
                                ": error " + std::to_string(err));
        }
    if (transposed) continue;  // multiply_depth takes a row-major A
    // Two depth ranges that add up to the whole product, as a split recurrence uses them.
    const Index split = c.k / 3;
    for (const bool backwards : {false, true}) {
      std::vector<float> got(c.m * c.n, 7.0f);
      packed.multiply_depth(a.data(), lda, c.m, got.data(), c.n, false, split, c.k, backwards);
      packed.multiply_depth(a.data(), lda, c.m, got.data(), c.n, true, 0, split, backwards);
      const double err =
          relative_error(got, reference(a, lda, 1, b, c, 0, c.k, start, false, nullptr));
      check(err < 1e-5, "multiply_depth " + shape + (backwards ? " backwards" : "") + ": error " +
                            std::to_string(err));
    }
  }
}

/// project(): the product with bias against the reference, and every row of an m-row product
/// the same bits as that row projected alone, and as it is within any 1 to 17 rows starting at
/// it (blocks of 8 and every remainder; a single row takes the single-row kernel).
void test_project(const Case& c, std::mt19937& gen) {
  auto random = [&](Index size) { return uniform_floats(size, gen); };
  const std::vector<float> b = random(c.k * c.n), bias = random(c.n), a = random(c.m * c.k);
  const kernels::PackedMatrix<float> packed = packed_rows(b, c);
  const std::string shape = shape_text(c);
  std::vector<float> all(c.m * c.n);
  packed.project(a.data(), c.k, c.m, all.data(), c.n, bias.data());
  const double err =
      relative_error(all, reference(a, c.k, 1, b, c, 0, c.k, all, false, bias.data()));
  check(err < 1e-5, "project " + shape + ": error " + std::to_string(err));
  for (Index first = 0; first < c.m; ++first)
    for (Index rows = 1; rows <= std::min<Index>(17, c.m - first); ++rows) {
      std::vector<float> some(rows * c.n);
      packed.project(a.data() + first * c.k, c.k, rows, some.data(), c.n, bias.data());
      check(std::equal(some.begin(), some.end(), all.begin() + first * c.n),
            "project " + shape + ": rows " + std::to_string(first) + " to " +
                std::to_string(first + rows - 1) + " alone differ from the whole product");
    }
}

/// A product whose A takes more than one pass over B (m rows of depth k beyond about 256 KB):
/// the reference's values, and every row the same bits as in a product of a slice of the rows
/// that starts on a row block (24 is a multiple of every set's), as multiply_parallel's
/// threads take them.
void test_passes(const Case& c, std::mt19937& gen) {
  auto random = [&](Index size) { return uniform_floats(size, gen); };
  const std::vector<float> b = random(c.k * c.n), a = random(c.m * c.k);
  const kernels::PackedMatrix<float> packed = packed_rows(b, c);
  const std::string shape = shape_text(c);
  std::vector<float> all(c.m * c.n), parts(c.m * c.n);
  packed.multiply(a.data(), c.k, c.m, all.data(), c.n, false);
  const double err = relative_error(all, reference(a, c.k, 1, b, c, 0, c.k, all, false, nullptr));
  check(err < 1e-5, "multiply in passes " + shape + ": error " + std::to_string(err));
  const Index split = 24;
  packed.multiply(a.data(), c.k, split, parts.data(), c.n, false);
  packed.multiply(a.data() + split * c.k, c.k, c.m - split, parts.data() + split * c.n, c.n, false);
  check(all == parts, "multiply in passes " + shape + ": rows the same bits in slices");
}

/// Which matrices are stored row by row: padded rows of at most 1 KB, and at most 256 KB in all
/// (64 floats pad to 256 bytes under every kernel set).
void test_layouts() {
  auto narrow = [](Index k, Index n) {
    const std::vector<float> b(k * n, 1.0f);
    return packed_rows(b, Case{1, k, n}).narrow();
  };
  check(narrow(64, 256), "a 64 x 256 matrix is stored row by row");
  check(!narrow(64, 257), "a 64 x 257 matrix (rows past 1 KB) is stored panel by panel");
  check(narrow(1024, 64), "a 1024 x 64 matrix (256 KB) is stored row by row");
  check(!narrow(1025, 64), "a 1025 x 64 matrix (past 256 KB) is stored panel by panel");
}

}  // namespace

int main() {
  std::mt19937 gen(5);
  // m = 1: 1 to 6 panels at once (n = 32 to 192), a short last panel (33, 100), a single short
  // panel (1, 31), depths below, at and past the unrolling (1, 3, 5, 64, 70); more than 6
  // panels in balanced groups: 8 (n = 256, the widest stored row by row), 10 and 14 (n = 300,
  // 420, stored panel by panel; 420 in groups of 5, 4, 5 with a short last panel).
  // m = 2, 9, 17: the row-block kernels (a remainder of 2 and 1 after 8), both layouts.
  for (const Case c :
       {Case{1, 1, 1}, Case{1, 3, 31}, Case{1, 5, 32}, Case{1, 64, 96}, Case{1, 70, 100},
        Case{1, 64, 192}, Case{1, 7, 33}, Case{1, 16, 256}, Case{1, 9, 300}, Case{1, 20, 420},
        Case{2, 5, 64}, Case{9, 70, 100}, Case{17, 64, 96}, Case{9, 33, 300}, Case{3, 17, 420}})
    test_case(c, gen);
  // Rows narrow enough to store row by row, but too deep (past 256 KB): stored panel by panel.
  test_layouts();
  for (const Case c : {Case{1, 1100, 64}, Case{9, 1100, 64}}) test_case(c, gen);
  // project(): one or two panels (where the other kernels split their chains), six, and more
  // than six in groups; depths below and past the unrolling.
  for (const Case c : {Case{19, 3, 20}, Case{19, 16, 64}, Case{12, 7, 192}, Case{10, 70, 420}})
    test_project(c, gen);
  // More than 256 KB of A: 2 passes (70 x 1100 floats), and 5 (100 x 3000).
  for (const Case c : {Case{70, 1100, 40}, Case{100, 3000, 33}}) test_passes(c, gen);
  return eigengru_test::finish();
}
