// The fused batch-1 step (cpp/src/kernels/row_step.hpp) against the unfused one it replaces, a
// PackedMatrix product followed by the batched gate pass: the same values bit for bit where
// the product takes its panels at least 3 at a time (with AVX-512, every fitting layer of 32 or
// more float units, 16 or more double ones), within rounding otherwise. Hidden sizes from one
// AVX-512 vector to two groups of units (float: 16 to 80 units, double: 8 to 40), both orders,
// with and without b_hn and a record. Compiled once per kernel set; it includes the library's
// internal headers, unlike the other C++ tests.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "kernel_set_test.hpp"
#include "packed_matrix.hpp"
#include "row_step.hpp"

namespace {

using eigengru::Index;
using eigengru_test::check;

template <typename Scalar>
void test_hidden_size(Index H, std::mt19937& gen) {
  std::uniform_real_distribution<double> u(-1, 1);
  auto random = [&](Index n, double scale) {
    std::vector<Scalar> v(n);
    for (auto& e : v) e = static_cast<Scalar>(scale * u(gen));
    return v;
  };
  const Index G = 3 * H;
  const std::vector<Scalar> w_hh = random(G * H, 0.3), gx = random(G, 1.0), h = random(H, 1.0),
                            bias_hn = random(H, 0.5);
  kernels::PackedMatrix<Scalar> w_hh_t;
  w_hh_t.pack(w_hh.data(), H, G, 1, H);  // B(k, j) = W_hh(j, k)
  check(kernels::detail::fits_row_step(w_hh_t, H),
        "a layer of " + std::to_string(H) + " units fits the fused step");
  // Bit for bit where the unfused product has one accumulator per vector (3 panels or more).
  const bool exact = G >= 3 * kernels::detail::kPanelWidth<Scalar> - 1;
  for (const bool backwards : {false, true})
    for (const bool with_bias : {false, true})
      for (const bool with_record : {false, true}) {
        const Scalar* b = with_bias ? bias_hn.data() : nullptr;
        std::vector<Scalar> gh(G), want(H), want_rec(4 * H), got(H, Scalar(7)),
            got_rec(4 * H, Scalar(7));
        w_hh_t.multiply(h.data(), H, 1, gh.data(), G, false, 1, nullptr, backwards);
        kernels::detail::forward_reset_after<Scalar>(H, gx.data(), gh.data(), b, h.data(),
                                                     want_rec.data(), want.data(), nullptr);
        kernels::detail::forward_row_reset_after<Scalar>(w_hh_t, H, gx.data(), b, h.data(),
                                                         with_record ? got_rec.data() : nullptr,
                                                         got.data(), backwards);
        double err = 0, rec_err = 0;
        for (Index j = 0; j < H; ++j) err = std::max(err, std::abs(double(got[j] - want[j])));
        for (Index j = 0; j < 4 * H && with_record; ++j)
          rec_err = std::max(rec_err, std::abs(double(got_rec[j] - want_rec[j])));
        const double allowed = exact ? 0.0 : (sizeof(Scalar) == 4 ? 1e-5 : 1e-13);
        const std::string what = std::string(sizeof(Scalar) == 4 ? "float" : "double") +
                                 " H=" + std::to_string(H) + (backwards ? " backwards" : "") +
                                 (with_bias ? " b_hn" : "") + (with_record ? " record" : "");
        check(err <= allowed, what + ": state differs by " + std::to_string(err));
        check(rec_err <= allowed, what + ": record differs by " + std::to_string(rec_err));
        if (!with_record) check(got_rec[0] == Scalar(7), what + ": wrote a record");
      }
}

}  // namespace

int main() {
  std::mt19937 gen(11);
  for (const Index H : {16, 32, 48, 64, 80}) test_hidden_size<float>(H, gen);
  for (const Index H : {8, 16, 24, 32, 40}) test_hidden_size<double>(H, gen);
  // Layers the fused step does not take: a gate block off a vector boundary, weights too wide
  // to be stored row by row.
  for (const Index H : {17, 96}) {
    kernels::PackedMatrix<float> w_hh_t;
    const std::vector<float> w(3 * H * H, 0.5f);
    w_hh_t.pack(w.data(), H, 3 * H, 1, H);
    check(!kernels::detail::fits_row_step(w_hh_t, H),
          "a layer of " + std::to_string(H) + " float units does not fit the fused step");
  }
  return eigengru_test::finish();
}
