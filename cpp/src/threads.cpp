#include "eigengru/threads.hpp"

#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace eigengru {
namespace {
// 0 means "never set": follow OpenMP's default. omp_set_num_threads would only change the calling
// thread's setting, so the count lives here and every parallel region names it explicitly.
std::atomic<int> g_num_threads{0};
}  // namespace

void set_num_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("set_num_threads: n must be at least 1, got " + std::to_string(n));
  }
  g_num_threads.store(n);
}

int get_num_threads() {
  const int n = g_num_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

}  // namespace eigengru
