// This kernel set's table of entry points: the one symbol that its object exports. The table is
// constant-initialised, so loading the library runs none of this set's code.
#include <Eigen/Core>

#include "gru_cell.hpp"
#include "kernel_set.hpp"
#include "layer.hpp"
#include "quantized_matrix.hpp"
#include "quantized_stack.hpp"
#include "stack.hpp"
#include "stack_step.hpp"
#include "stream.hpp"

#define EIGENGRU_CONCAT_(a, b) a##b
#define EIGENGRU_CONCAT(a, b) EIGENGRU_CONCAT_(a, b)
#define EIGENGRU_STRING_(a) #a
#define EIGENGRU_STRING(a) EIGENGRU_STRING_(a)

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace {

// The interfaces' objects that reach this set were made by its own factories below, since the
// set is chosen once per process: the downcasts are safe.
template <typename Scalar>
TrainingCache<Scalar>& own(eigengru::detail::TrainingCacheInterface<Scalar>& cache) {
  return static_cast<TrainingCache<Scalar>&>(cache);
}
template <typename Scalar>
StackCache<Scalar>& own(eigengru::detail::StackCacheInterface<Scalar>& cache) {
  return static_cast<StackCache<Scalar>&>(cache);
}

template <typename Scalar>
constexpr eigengru::detail::KernelFunctions<Scalar> functions() {
  using namespace eigengru::detail;
  return {
      [](const LayerWeights<Scalar>& w, const Sequence& seq, const Scalar* x, const Scalar* h0,
         Scalar* out, Scalar* h_n) { forward<Scalar>(w, seq, x, h0, out, h_n); },
      [](const LayerWeights<Scalar>& w, const Sequence& seq, const Scalar* x, const Scalar* h0,
         Scalar* out, Scalar* h_n, TrainingCacheInterface<Scalar>& cache) {
        forward_training<Scalar>(w, seq, x, h0, out, h_n, own(cache));
      },
      [](TrainingCacheInterface<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
         Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>& grads, bool accumulate,
         bool keep) {
        backward<Scalar>(own(cache), grad_out, grad_h_n, grad_x, grad_h0, grads, accumulate, keep);
      },
      [](const StackSpec& spec, const LayerWeights<Scalar>* w, Index steps, Index batch,
         const Index* lengths, const Scalar* x, const Scalar* h0, Scalar* out,
         Scalar* h_n) { stack_forward<Scalar>(spec, w, steps, batch, lengths, x, h0, out, h_n); },
      [](const StackSpec& spec, const LayerWeights<Scalar>* w, Index steps, Index batch,
         const Index* lengths, const Scalar* x, const Scalar* h0, Scalar* out, Scalar* h_n,
         std::uint64_t seed, StackCacheInterface<Scalar>& cache) {
        stack_forward_training<Scalar>(spec, w, steps, batch, lengths, x, h0, out, h_n, seed,
                                       own(cache));
      },
      [](StackCacheInterface<Scalar>& cache, const Scalar* grad_out, const Scalar* grad_h_n,
         Scalar* grad_x, Scalar* grad_h0, const LayerGradients<Scalar>* grads, bool keep) {
        stack_backward<Scalar>(own(cache), grad_out, grad_h_n, grad_x, grad_h0, grads, keep);
      },
      []() -> TrainingCacheInterface<Scalar>* { return new TrainingCache<Scalar>(); },
      []() -> StackCacheInterface<Scalar>* { return new StackCache<Scalar>(); },
      [](const StackSpec& spec, const LayerWeights<Scalar>* w,
         Index batch) -> StreamInterface<Scalar>* { return new Stream<Scalar>(spec, w, batch); },
      [](const StackSpec& spec, const LayerWeights<Scalar>* w) -> StackStepInterface<Scalar>* {
        return new StackStep<Scalar>(spec, w);
      },
      [](const LayerWeights<Scalar>& w) -> GRUCellInterface<Scalar>* {
        return new GRUCell<Scalar>(w);
      },
  };
}

// The instruction sets that the set's code is compiled for, from the compiler's own macros
// (Eigen's list names neither AVX2 nor FMA below AVX-512); each entry ", NAME".
constexpr char kInstructionSets[] =
    ""
#if defined(__AVX512F__)
    ", AVX512F"
#endif
#if defined(__AVX512BW__)
    ", AVX512BW"
#endif
#if defined(__AVX512CD__)
    ", AVX512CD"
#endif
#if defined(__AVX512DQ__)
    ", AVX512DQ"
#endif
#if defined(__AVX512VL__)
    ", AVX512VL"
#endif
#if defined(__AVX2__)
    ", AVX2"
#endif
#if defined(__FMA__)
    ", FMA"
#endif
#if defined(__AVX__)
    ", AVX"
#endif
#if defined(__SSE4_2__)
    ", SSE4.2"
#endif
#if defined(__SSE4_1__)
    ", SSE4.1"
#endif
#if defined(__SSSE3__)
    ", SSSE3"
#endif
#if defined(__SSE3__)
    ", SSE3"
#endif
#if defined(__SSE2__)
    ", SSE2"
#endif
#if defined(__ARM_NEON)
    ", NEON"
#endif
    ;

constexpr eigengru::detail::KernelSet kSet{
    EIGENGRU_STRING(EIGENGRU_KERNEL_SET),
    [] { return sizeof(kInstructionSets) > 1 ? kInstructionSets + 2 : "scalar only"; },
    functions<float>(),
    functions<double>(),
    {
        [](const StackSpec& spec,
           const QuantizedLayer* layers) -> eigengru::detail::QuantizedStackInterface* {
          return new QuantizedStack(spec, layers);
        },
        [](const StackSpec& spec, const QuantizedLayer* layers,
           Index batch) -> eigengru::detail::StreamInterface<float>* {
          return new QuantizedStream(spec, layers, batch);
        },
        [](Precision precision) { return detail::QuantizedPanels::kernel(precision); },
    },
};

}  // namespace
}  // namespace eigengru::EIGENGRU_KERNEL_SET

/// The set's table, named after the set (eigengru_kernel_set_avx2, ...).
extern "C" const eigengru::detail::KernelSet* EIGENGRU_CONCAT(eigengru_kernel_set_,
                                                              EIGENGRU_KERNEL_SET)() {
  return &eigengru::EIGENGRU_KERNEL_SET::kSet;
}
