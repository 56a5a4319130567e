// Stream::step allocates nothing: every malloc in this program is counted (glibc's allocator
// stays underneath), and 10,000 steps of a 2-layer stream, batch 1 and batch 4, float and
// quantized, add none; nor
// do a GRUCell's forward and backward steps once its first call has sized its scratch.
#include <cstddef>
#include <cstdio>
#include <random>
#include <vector>

#include "check.hpp"
#include "eigengru/eigengru.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::size_t allocations = 0;
}

extern "C" {
void* malloc(std::size_t n) {
  ++allocations;
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  ++allocations;
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  ++allocations;
  return __libc_realloc(p, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  ++allocations;
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  ++allocations;
  *out = __libc_memalign(alignment, n);
  return *out ? 0 : 12;
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  ++allocations;
  return __libc_memalign(alignment, n);
}
}

int main() {
  if (!eigengru_test::requested_kernel_set_runs()) return eigengru_test::kSkipped;
  int failures = 0;
  for (eigengru::Index batch : {1, 4}) {
    eigengru::StackSpec spec;
    spec.input_size = 16;
    spec.hidden_size = 64;
    spec.num_layers = 2;
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-0.3f, 0.3f);
    std::vector<std::vector<float>> params;
    std::vector<eigengru::LayerWeights<float>> layers;
    for (int l = 0; l < 2; ++l)
      for (long count : {3L * 64 * spec.layer_input_size(l), 3L * 64 * 64, 3L * 64, 3L * 64}) {
        params.emplace_back(static_cast<std::size_t>(count));
        for (auto& v : params.back()) v = u(gen);
      }
    for (int l = 0; l < 2; ++l)
      layers.push_back({spec.layer_input_size(l), 64, true, params[4 * l].data(),
                        params[4 * l + 1].data(), params[4 * l + 2].data(),
                        params[4 * l + 3].data()});
    const std::size_t at_construction = allocations;
    eigengru::Stream<float> stream(spec, layers.data(), batch);
    // A quantized stream of the same model, each precision.
    for (auto precision : {eigengru::Precision::kBfloat16, eigengru::Precision::kInt8}) {
      const std::vector<eigengru::QuantizedLayer> quantized = {
          eigengru::quantize(layers[0], precision), eigengru::quantize(layers[1], precision)};
      eigengru::Stream<float> q(spec, quantized.data(), batch);
      std::vector<float> qx(static_cast<std::size_t>(batch * 16), 0.5f), qout(batch * 64);
      const std::size_t before_q = allocations;
      for (int step = 0; step < 10000; ++step) {
        qx[0] = static_cast<float>(step % 7) * 0.1f;
        q.step(qx.data(), qout.data());
      }
      const std::size_t during_q = allocations - before_q;
      std::printf("batch %ld, %s: %zu allocations in 10000 steps\n", static_cast<long>(batch),
                  eigengru::precision_name(precision), during_q);
      if (during_q != 0) ++failures;
    }
    if (allocations == at_construction) {  // the counter must see the constructor's buffers
      std::printf("the allocation counter saw nothing: it is not working\n");
      ++failures;
    }
    std::vector<float> x(static_cast<std::size_t>(batch * 16), 0.5f), out(batch * 64);
    const std::size_t before = allocations;
    for (int step = 0; step < 10000; ++step) {
      x[0] = static_cast<float>(step % 7) * 0.1f;
      stream.step(x.data(), out.data());
    }
    stream.reset();
    const std::size_t during = allocations - before;
    std::printf("batch %ld: %zu allocations in 10000 steps\n", static_cast<long>(batch), during);
    if (during != 0) ++failures;

    // A GRUCell's training loop: forward with records, then backward, step after step.
    eigengru::GRUCell<float> cell(layers[0]);
    std::vector<float> h(batch * 64, 0.1f), next(batch * 64), record(batch * 4 * 64),
        dx(batch * 16), dh(batch * 64), g_ih(3 * 64 * 16), g_hh(3 * 64 * 64), g_b(2 * 3 * 64);
    const eigengru::LayerGradients<float> grads{g_ih.data(), g_hh.data(), g_b.data(),
                                                g_b.data() + 3 * 64};
    cell.forward(batch, x.data(), h.data(), next.data(), record.data());  // sizes its scratch
    const std::size_t before_cell = allocations;
    for (int step = 0; step < 1000; ++step) {
      cell.forward(batch, x.data(), h.data(), next.data(), record.data());
      cell.backward(batch, x.data(), h.data(), record.data(), next.data(), dx.data(), dh.data(),
                    grads, true);
    }
    const std::size_t in_cell = allocations - before_cell;
    std::printf("batch %ld: %zu allocations in 1000 GRUCell forward and backward steps\n",
                static_cast<long>(batch), in_cell);
    if (in_cell != 0) ++failures;
  }
  std::printf("%s\n", failures ? "FAILED" : "OK");
  return failures ? 1 : 0;
}
