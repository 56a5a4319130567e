// What one kernel set provides, and the set in use.
//
// The numerical core (cpp/src/kernels) is compiled once per instruction set: AVX-512, AVX2 and
// a portable baseline on x86-64. Each copy lives in its own namespace with its own Eigen, and is
// linked into one object whose only global symbol is its KernelSet, so no template or inline
// function of one set can stand in for another's. The public API (dispatch.cpp) calls the set
// chosen at first use (isa.cpp) through these interfaces, which hold no Eigen types: only raw
// pointers and sizes cross between sets and the rest of the library.
#pragma once

#include <cstddef>
#include <cstdint>

#include "eigengru/quantized.hpp"
#include "eigengru/sequence.hpp"
#include "eigengru/stack_spec.hpp"
#include "eigengru/types.hpp"
#include "eigengru/weights.hpp"

namespace eigengru::detail {

/// What a training forward keeps for backward; see eigengru::TrainingCache.
template <typename Scalar>
class TrainingCacheInterface {
 public:
  virtual ~TrainingCacheInterface() = default;
  virtual bool ready() const = 0;
  virtual Index steps() const = 0;
  virtual Index batch() const = 0;
  virtual Index input_size() const = 0;
  virtual Index hidden_size() const = 0;
  virtual bool reset_after() const = 0;
  virtual bool has_bias() const = 0;
  virtual bool reverse() const = 0;
  virtual std::size_t bytes() const = 0;
  virtual void clear() = 0;
};

/// See eigengru::StackCache.
template <typename Scalar>
class StackCacheInterface {
 public:
  virtual ~StackCacheInterface() = default;
  virtual bool ready() const = 0;
  virtual Index steps() const = 0;
  virtual Index batch() const = 0;
  virtual const StackSpec& spec() const = 0;
  virtual bool has_bias() const = 0;
  virtual std::size_t bytes() const = 0;
  virtual void clear() = 0;
  virtual const Scalar* input_mask(Index k) const = 0;
  virtual const Scalar* recurrent_mask(Index k) const = 0;
};

/// See eigengru::Stream.
template <typename Scalar>
class StreamInterface {
 public:
  virtual ~StreamInterface() = default;
  virtual void step(const Scalar* x, Scalar* out) noexcept = 0;
  virtual void reset() noexcept = 0;
  virtual void reset(const Scalar* h0) noexcept = 0;
  virtual const Scalar* state() const noexcept = 0;
};

/// See eigengru::StackStep.
template <typename Scalar>
class StackStepInterface {
 public:
  virtual ~StackStepInterface() = default;
  virtual void forward(Index batch, const Scalar* x, const Scalar* h0, Scalar* h_n, Scalar* out,
                       int threads) = 0;
};

/// See eigengru::GRUCell.
template <typename Scalar>
class GRUCellInterface {
 public:
  virtual ~GRUCellInterface() = default;
  virtual void forward(Index batch, const Scalar* x, const Scalar* h, Scalar* h_next,
                       Scalar* record) = 0;
  virtual void backward(Index batch, const Scalar* x, const Scalar* h, Scalar* record,
                        const Scalar* grad_h_next, Scalar* dx, Scalar* dh,
                        const LayerGradients<Scalar>& g, bool accumulate) = 0;
};

/// One kernel set's entry points for one scalar type, with the public API's arguments (the
/// functions of layer.hpp and stack.hpp, and factories for the stateful classes). Objects a
/// factory returns are owned by the caller and belong to this set.
template <typename Scalar>
struct KernelFunctions {
  void (*forward)(const LayerWeights<Scalar>&, const Sequence&, const Scalar*, const Scalar*,
                  Scalar*, Scalar*);
  void (*forward_training)(const LayerWeights<Scalar>&, const Sequence&, const Scalar*,
                           const Scalar*, Scalar*, Scalar*, TrainingCacheInterface<Scalar>&);
  void (*backward)(TrainingCacheInterface<Scalar>&, const Scalar*, const Scalar*, Scalar*, Scalar*,
                   const LayerGradients<Scalar>&, bool, bool);
  void (*stack_forward)(const StackSpec&, const LayerWeights<Scalar>*, Index, Index, const Index*,
                        const Scalar*, const Scalar*, Scalar*, Scalar*);
  void (*stack_forward_training)(const StackSpec&, const LayerWeights<Scalar>*, Index, Index,
                                 const Index*, const Scalar*, const Scalar*, Scalar*, Scalar*,
                                 std::uint64_t, StackCacheInterface<Scalar>&);
  void (*stack_backward)(StackCacheInterface<Scalar>&, const Scalar*, const Scalar*, Scalar*,
                         Scalar*, const LayerGradients<Scalar>*, bool);
  TrainingCacheInterface<Scalar>* (*new_training_cache)();
  StackCacheInterface<Scalar>* (*new_stack_cache)();
  StreamInterface<Scalar>* (*new_stream)(const StackSpec&, const LayerWeights<Scalar>*, Index);
  StackStepInterface<Scalar>* (*new_stack_step)(const StackSpec&, const LayerWeights<Scalar>*);
  GRUCellInterface<Scalar>* (*new_gru_cell)(const LayerWeights<Scalar>&);
};

/// See eigengru::QuantizedGRU: a quantized stack, packed; forward() checks the lengths.
class QuantizedStackInterface {
 public:
  virtual ~QuantizedStackInterface() = default;
  virtual void forward(Index steps, Index batch, const Index* lengths, const float* x,
                       const float* h0, float* out, float* h_n, int threads) const = 0;
};

/// One kernel set's entry points for quantized stacks, whose arguments are checked already.
struct QuantizedFunctions {
  QuantizedStackInterface* (*new_stack)(const StackSpec&, const QuantizedLayer*);
  StreamInterface<float>* (*new_stream)(const StackSpec&, const QuantizedLayer*, Index);
  const char* (*kernel)(Precision);
};

/// A compiled kernel set.
struct KernelSet {
  const char* name;       ///< "avx512", "avx2", "baseline" or "native"
  const char* (*simd)();  ///< the SIMD instruction sets its code is compiled for
  KernelFunctions<float> f32;
  KernelFunctions<double> f64;
  QuantizedFunctions quantized;

  template <typename Scalar>
  const KernelFunctions<Scalar>& functions() const {
    if constexpr (sizeof(Scalar) == sizeof(float))
      return f32;
    else
      return f64;
  }
};

/// The kernel set in use, chosen on the first call (EIGENGRU_ISA, else the fastest that this
/// CPU runs). Throws std::runtime_error when EIGENGRU_ISA names a set that is unknown, not
/// compiled in or not supported by this CPU; a later call tries again.
const KernelSet& active_kernel_set();

/// The active set's functions for Scalar.
template <typename Scalar>
const KernelFunctions<Scalar>& kernels() {
  return active_kernel_set().functions<Scalar>();
}

}  // namespace eigengru::detail
