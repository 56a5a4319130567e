#include "eigengru/path_counts.hpp"

#include <atomic>

namespace eigengru {
namespace {
std::atomic<std::uint64_t> g_counts[static_cast<int>(Path::kCount)];
}  // namespace

std::uint64_t path_count(Path path) {
  return g_counts[static_cast<int>(path)].load(std::memory_order_relaxed);
}

namespace detail {
void count_path(Path path) {
  g_counts[static_cast<int>(path)].fetch_add(1, std::memory_order_relaxed);
}
}  // namespace detail

}  // namespace eigengru
