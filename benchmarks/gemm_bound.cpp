// The GEMM bound of a GRU forward pass, timed in C++ with the project's Eigen build:
// one input-projection product (T*B x I)(I x 3H) plus T recurrent products (B x H)(H x 3H).
// Also times eigengru's packed kernel on the same products (rows split over the threads, as the
// library splits them; with fewer rows than threads, hidden units split over them as well, as
// the library's inference does), a tighter bound where that kernel is the faster one, and the
// cores' multiply-add peak: what no product can beat.
//
//   gemm_bound T B I H [repeats]    prints one JSON object
#include <omp.h>
#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "eigengru/threads.hpp"
#include "micro_kernel.hpp"
#include "packed_matrix.hpp"
#include "work_split.hpp"

namespace {

// Compiled with one kernel set's sources and flags (CMakeLists.txt builds a program per set).
namespace kernels = eigengru::EIGENGRU_KERNEL_SET;
using Clock = std::chrono::steady_clock;
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// The fastest of the repeats: a bound is what the products take when nothing else runs, and
/// on a shared host a repeat is only ever slowed by the rest, so the median of a few repeats
/// moved with other guests' load (whole cells at 124-156% of it in some runs).
template <typename F>
double best_seconds(int repeats, F f) {
  f();  // warm-up
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

/// GFLOP/s of `threads` threads doing nothing but vector multiply-adds on registers (the kernel
/// set's vectors): independent chains in all but 4 of the registers, enough to hide the
/// latency, so the rate is the cores' throughput. The best of a few short runs, since a peak is
/// what is measured without interruptions.
double multiply_add_peak_gflops(int threads) {
  using Vec = kernels::detail::Vec<float>;
  constexpr int kChains = kernels::kVectorRegisters - 4, kRuns = 5;
  constexpr long kIterations = 500000;
  double best = 0;
  float sink = 0;
  for (int run = 0; run < kRuns; ++run) {
    double seconds = 0;
#pragma omp parallel num_threads(threads) reduction(max : seconds) reduction(+ : sink)
    {
      // Every loop over the chains unrolled whole, so that the chains live in registers: with
      // 28 of them GCC's default left them in memory, and the rate measured was a store's.
      Vec acc[kChains], scale = Vec{} + 0.999999f, shift = Vec{} + 1e-7f;
#pragma GCC unroll 32
      for (int c = 0; c < kChains; ++c) acc[c] = Vec{} + 1.0f + 1e-3f * static_cast<float>(c);
      __asm__ volatile("" : "+v"(scale), "+v"(shift));  // not constants to fold
      const auto start = Clock::now();
      for (long n = 0; n < kIterations; ++n)
#pragma GCC unroll 32
        for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * scale + shift;
      seconds = std::chrono::duration<double>(Clock::now() - start).count();
#pragma GCC unroll 32
      for (int c = 0; c < kChains; ++c) sink += acc[c][0];
    }
    const double lanes = sizeof(Vec) / sizeof(float);
    best = std::max(best, 2.0 * lanes * kChains * kIterations * threads / seconds / 1e9);
  }
  volatile float keep = sink;  // the chains' results are used
  (void)keep;
  return best;
}

/// Nanoseconds for two threads to pass a cache line there and back (the best of a few runs;
/// 0 below 2 threads). Inference at batch 1 with several threads exchanges lines every step, so
/// its speed follows this latency, which depends on where the host places the cores.
double core_round_trip_ns(int threads) {
  if (threads < 2) return 0;
  struct alignas(64) Flag {
    std::atomic<long> value{0};
  };
  constexpr long kTrips = 20000;
  constexpr int kRuns = 3;
  double best = 1e30;
  for (int run = 0; run < kRuns; ++run) {
    Flag ping, pong;
    double seconds = 0;
    bool paired = true;
#pragma omp parallel num_threads(2) reduction(max : seconds)
    {
#pragma omp single
      paired = omp_get_num_threads() == 2;  // else no one would answer
      const bool first = omp_get_thread_num() == 0;
      Flag& mine = first ? ping : pong;
      const Flag& theirs = first ? pong : ping;
#pragma omp barrier
      const auto start = Clock::now();
      for (long n = 1; n <= kTrips && paired; ++n) {
        if (first) mine.value.store(n, std::memory_order_release);
        while (theirs.value.load(std::memory_order_acquire) < n) {
        }
        if (!first) mine.value.store(n, std::memory_order_release);
      }
      seconds = std::chrono::duration<double>(Clock::now() - start).count();
    }
    if (!paired) return 0;
    best = std::min(best, seconds / kTrips * 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: gemm_bound T B I H [repeats]\n");
    return 2;
  }
  const Eigen::Index T = std::atol(argv[1]), B = std::atol(argv[2]), I = std::atol(argv[3]),
                     H = std::atol(argv[4]);
  const int repeats = argc > 5 ? std::atoi(argv[5]) : 5;
  Eigen::setNbThreads(eigengru::get_num_threads());

  const Matrix x = Matrix::Random(T * B, I), w_ih = Matrix::Random(3 * H, I);
  const Matrix w_hh = Matrix::Random(3 * H, H), h = Matrix::Random(B, H);
  Matrix gx(T * B, 3 * H), gh(B, 3 * H);

  const double projection = best_seconds(repeats, [&] { gx.noalias() = x * w_ih.transpose(); });
  // T products per repeat, so that the per-call overhead is part of what is timed.
  const double eigen_steps = best_seconds(repeats, [&] {
    for (Eigen::Index t = 0; t < T; ++t) gh.noalias() = h * w_hh.transpose();
  });
  kernels::PackedMatrix<float> packed;
  packed.pack(w_hh.data(), H, 3 * H, 1, H);
  // Per step each thread multiplies its own slice of the batch, all at once inside the one
  // parallel region around the time loop: a step takes what one slice's product takes. The
  // panel order alternates from step to step, as the library's does (at batch 1 a step then
  // starts on the panels still in L1).
  const int threads = eigengru::get_num_threads();
  const Eigen::Index slice = (B + threads - 1) / threads;
  const double packed_steps = best_seconds(repeats, [&] {
    for (Eigen::Index t = 0; t < T; ++t)
      packed.multiply(h.data(), H, slice, gh.data(), 3 * H, false, 1, nullptr, t % 2 == 1);
  });
  // With fewer rows than threads, the library's inference splits the hidden units instead
  // (unit_threads parts of 16-unit multiples; layer_forward_units.cpp): a step then takes the
  // largest part's product, every row against the weights of that part's units.
  double packed_units_steps = packed_steps;
  const int parts = kernels::detail::unit_threads(threads, eigengru::Sequence{T, B}, H);
  if (parts > 1) {
    const Eigen::Index units = H - H * (parts - 1) / parts / 16 * 16;  // the last part's
    kernels::PackedMatrix<float> part;
    part.pack(w_hh.data(), H, 3 * units, 1, H);
    packed_units_steps = best_seconds(repeats, [&] {
      for (Eigen::Index t = 0; t < T; ++t)
        part.multiply(h.data(), H, B, gh.data(), 3 * H, false, 1, nullptr, t % 2 == 1);
    });
  }
  // The projection runs on the parts, or on the threads that have rows.
  const int projection_threads = parts > 1 ? parts : kernels::detail::row_threads(threads, B);
  kernels::PackedMatrix<float> packed_ih;
  packed_ih.pack(w_ih.data(), I, 3 * H, 1, I);
  const double packed_projection = best_seconds(repeats, [&] {
    packed_ih.multiply_parallel(x.data(), I, T * B, gx.data(), 3 * H, false, projection_threads);
  });
  const double peak = multiply_add_peak_gflops(threads);
  std::printf(
      "{\"threads\": %d, \"projection_ms\": %.4f, \"eigen_step_us\": %.3f, "
      "\"bound_ms\": %.4f, \"packed_projection_ms\": %.4f, \"packed_step_us\": %.3f, "
      "\"packed_units_step_us\": %.3f, \"multiply_add_peak_gflops\": %.1f, "
      "\"core_round_trip_ns\": %.0f}\n",
      eigengru::get_num_threads(), projection * 1e3, eigen_steps / T * 1e6,
      (projection + eigen_steps) * 1e3, packed_projection * 1e3, packed_steps / T * 1e6,
      packed_units_steps / T * 1e6, peak, core_round_trip_ns(threads));
  return 0;
}
