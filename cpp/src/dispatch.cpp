// The public API's computing entry points: each forwards to the kernel set in use
// (kernel_set.hpp), and the classes hold that set's objects behind their handles.
#include <utility>

#include "eigengru/gru_cell.hpp"
#include "eigengru/layer.hpp"
#include "eigengru/stack.hpp"
#include "eigengru/stack_step.hpp"
#include "eigengru/stream.hpp"
#include "eigengru/training_cache.hpp"
#include "kernel_set.hpp"

namespace eigengru {

namespace detail {
/// The one place that reaches into the cache handles for the set's objects.
struct Handles {
  template <typename Scalar>
  static TrainingCacheInterface<Scalar>& state(TrainingCache<Scalar>& cache) {
    return *cache.state_;
  }
  template <typename Scalar>
  static StackCacheInterface<Scalar>& state(StackCache<Scalar>& cache) {
    return *cache.state_;
  }
};
}  // namespace detail

// ----- One layer ---------------------------------------------------------------------------

template <typename Scalar>
void forward(const LayerWeights<Scalar>& weights, const Sequence& seq, const NoDeduce<Scalar>* x,
             const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out, NoDeduce<Scalar>* h_n) {
  detail::kernels<Scalar>().forward(weights, seq, x, h0, out, h_n);
}

template <typename Scalar>
void forward_training(const LayerWeights<Scalar>& weights, const Sequence& seq,
                      const NoDeduce<Scalar>* x, const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out,
                      NoDeduce<Scalar>* h_n, TrainingCache<Scalar>& cache) {
  detail::kernels<Scalar>().forward_training(weights, seq, x, h0, out, h_n,
                                             detail::Handles::state(cache));
}

template <typename Scalar>
void backward(TrainingCache<Scalar>& cache, const NoDeduce<Scalar>* grad_out,
              const NoDeduce<Scalar>* grad_h_n, NoDeduce<Scalar>* grad_x, NoDeduce<Scalar>* grad_h0,
              const LayerGradients<Scalar>& grads, bool accumulate_grad_x, bool keep_cache) {
  detail::kernels<Scalar>().backward(detail::Handles::state(cache), grad_out, grad_h_n, grad_x,
                                     grad_h0, grads, accumulate_grad_x, keep_cache);
}

template <typename Scalar>
TrainingCache<Scalar>::TrainingCache() : state_(detail::kernels<Scalar>().new_training_cache()) {}
template <typename Scalar>
TrainingCache<Scalar>::~TrainingCache() = default;
template <typename Scalar>
TrainingCache<Scalar>::TrainingCache(TrainingCache&&) noexcept = default;
template <typename Scalar>
TrainingCache<Scalar>& TrainingCache<Scalar>::operator=(TrainingCache&&) noexcept = default;
template <typename Scalar>
bool TrainingCache<Scalar>::ready() const {
  return state_->ready();
}
template <typename Scalar>
Index TrainingCache<Scalar>::steps() const {
  return state_->steps();
}
template <typename Scalar>
Index TrainingCache<Scalar>::batch() const {
  return state_->batch();
}
template <typename Scalar>
Index TrainingCache<Scalar>::input_size() const {
  return state_->input_size();
}
template <typename Scalar>
Index TrainingCache<Scalar>::hidden_size() const {
  return state_->hidden_size();
}
template <typename Scalar>
bool TrainingCache<Scalar>::reset_after() const {
  return state_->reset_after();
}
template <typename Scalar>
bool TrainingCache<Scalar>::has_bias() const {
  return state_->has_bias();
}
template <typename Scalar>
bool TrainingCache<Scalar>::reverse() const {
  return state_->reverse();
}
template <typename Scalar>
std::size_t TrainingCache<Scalar>::bytes() const {
  return state_->bytes();
}
template <typename Scalar>
void TrainingCache<Scalar>::clear() {
  state_->clear();
}

// ----- A stack -----------------------------------------------------------------------------

template <typename Scalar>
void stack_forward(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                   Index batch, const Index* lengths, const NoDeduce<Scalar>* x,
                   const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out, NoDeduce<Scalar>* h_n) {
  detail::kernels<Scalar>().stack_forward(spec, weights, steps, batch, lengths, x, h0, out, h_n);
}

template <typename Scalar>
void stack_forward_training(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index steps,
                            Index batch, const Index* lengths, const NoDeduce<Scalar>* x,
                            const NoDeduce<Scalar>* h0, NoDeduce<Scalar>* out,
                            NoDeduce<Scalar>* h_n, std::uint64_t dropout_seed,
                            StackCache<Scalar>& cache) {
  detail::kernels<Scalar>().stack_forward_training(spec, weights, steps, batch, lengths, x, h0, out,
                                                   h_n, dropout_seed,
                                                   detail::Handles::state(cache));
}

template <typename Scalar>
void stack_backward(StackCache<Scalar>& cache, const NoDeduce<Scalar>* grad_out,
                    const NoDeduce<Scalar>* grad_h_n, NoDeduce<Scalar>* grad_x,
                    NoDeduce<Scalar>* grad_h0, const LayerGradients<Scalar>* grads,
                    bool keep_cache) {
  detail::kernels<Scalar>().stack_backward(detail::Handles::state(cache), grad_out, grad_h_n,
                                           grad_x, grad_h0, grads, keep_cache);
}

template <typename Scalar>
StackCache<Scalar>::StackCache() : state_(detail::kernels<Scalar>().new_stack_cache()) {}
template <typename Scalar>
StackCache<Scalar>::~StackCache() = default;
template <typename Scalar>
StackCache<Scalar>::StackCache(StackCache&&) noexcept = default;
template <typename Scalar>
StackCache<Scalar>& StackCache<Scalar>::operator=(StackCache&&) noexcept = default;
template <typename Scalar>
bool StackCache<Scalar>::ready() const {
  return state_->ready();
}
template <typename Scalar>
Index StackCache<Scalar>::steps() const {
  return state_->steps();
}
template <typename Scalar>
Index StackCache<Scalar>::batch() const {
  return state_->batch();
}
template <typename Scalar>
const StackSpec& StackCache<Scalar>::spec() const {
  return state_->spec();
}
template <typename Scalar>
bool StackCache<Scalar>::has_bias() const {
  return state_->has_bias();
}
template <typename Scalar>
std::size_t StackCache<Scalar>::bytes() const {
  return state_->bytes();
}
template <typename Scalar>
void StackCache<Scalar>::clear() {
  state_->clear();
}
template <typename Scalar>
const Scalar* StackCache<Scalar>::input_mask(Index k) const {
  return state_->input_mask(k);
}
template <typename Scalar>
const Scalar* StackCache<Scalar>::recurrent_mask(Index k) const {
  return state_->recurrent_mask(k);
}

// ----- Step by step ------------------------------------------------------------------------

template <typename Scalar>
Stream<Scalar>::Stream(const StackSpec& spec, const LayerWeights<Scalar>* weights, Index batch)
    : spec_(spec),
      batch_(batch),
      state_(detail::kernels<Scalar>().new_stream(spec, weights, batch)) {}
template <typename Scalar>
Stream<Scalar>::~Stream() = default;
template <typename Scalar>
Stream<Scalar>::Stream(Stream&&) noexcept = default;
template <typename Scalar>
Stream<Scalar>& Stream<Scalar>::operator=(Stream&&) noexcept = default;
template <typename Scalar>
void Stream<Scalar>::step(const Scalar* x, Scalar* out) noexcept {
  state_->step(x, out);
}
template <typename Scalar>
void Stream<Scalar>::reset() noexcept {
  state_->reset();
}
template <typename Scalar>
void Stream<Scalar>::reset(const Scalar* h0) noexcept {
  state_->reset(h0);
}
template <typename Scalar>
const Scalar* Stream<Scalar>::state() const noexcept {
  return state_->state();
}

template <typename Scalar>
StackStep<Scalar>::StackStep(const StackSpec& spec, const LayerWeights<Scalar>* weights)
    : spec_(spec), state_(detail::kernels<Scalar>().new_stack_step(spec, weights)) {}
template <typename Scalar>
StackStep<Scalar>::~StackStep() = default;
template <typename Scalar>
StackStep<Scalar>::StackStep(StackStep&&) noexcept = default;
template <typename Scalar>
StackStep<Scalar>& StackStep<Scalar>::operator=(StackStep&&) noexcept = default;
template <typename Scalar>
void StackStep<Scalar>::forward(Index batch, const Scalar* x, const Scalar* h0, Scalar* h_n,
                                Scalar* out, int threads) {
  state_->forward(batch, x, h0, h_n, out, threads);
}

template <typename Scalar>
GRUCell<Scalar>::GRUCell(const LayerWeights<Scalar>& w)
    : input_size_(w.input_size),
      hidden_size_(w.hidden_size),
      reset_after_(w.reset_after),
      has_bias_(w.has_bias()),
      state_(detail::kernels<Scalar>().new_gru_cell(w)) {}
template <typename Scalar>
GRUCell<Scalar>::~GRUCell() = default;
template <typename Scalar>
GRUCell<Scalar>::GRUCell(GRUCell&&) noexcept = default;
template <typename Scalar>
GRUCell<Scalar>& GRUCell<Scalar>::operator=(GRUCell&&) noexcept = default;
template <typename Scalar>
void GRUCell<Scalar>::forward(Index batch, const Scalar* x, const Scalar* h, Scalar* h_next,
                              Scalar* record) {
  state_->forward(batch, x, h, h_next, record);
}
template <typename Scalar>
void GRUCell<Scalar>::backward(Index batch, const Scalar* x, const Scalar* h, Scalar* record,
                               const Scalar* grad_h_next, Scalar* dx, Scalar* dh,
                               const LayerGradients<Scalar>& g, bool accumulate) {
  state_->backward(batch, x, h, record, grad_h_next, dx, dh, g, accumulate);
}

#define EIGENGRU_INSTANTIATE(Scalar)                                                               \
  template void forward<Scalar>(const LayerWeights<Scalar>&, const Sequence&, const Scalar*,       \
                                const Scalar*, Scalar*, Scalar*);                                  \
  template void forward_training<Scalar>(const LayerWeights<Scalar>&, const Sequence&,             \
                                         const Scalar*, const Scalar*, Scalar*, Scalar*,           \
                                         TrainingCache<Scalar>&);                                  \
  template void backward<Scalar>(TrainingCache<Scalar>&, const Scalar*, const Scalar*, Scalar*,    \
                                 Scalar*, const LayerGradients<Scalar>&, bool, bool);              \
  template void stack_forward<Scalar>(const StackSpec&, const LayerWeights<Scalar>*, Index, Index, \
                                      const Index*, const Scalar*, const Scalar*, Scalar*,         \
                                      Scalar*);                                                    \
  template void stack_forward_training<Scalar>(                                                    \
      const StackSpec&, const LayerWeights<Scalar>*, Index, Index, const Index*, const Scalar*,    \
      const Scalar*, Scalar*, Scalar*, std::uint64_t, StackCache<Scalar>&);                        \
  template void stack_backward<Scalar>(StackCache<Scalar>&, const Scalar*, const Scalar*, Scalar*, \
                                       Scalar*, const LayerGradients<Scalar>*, bool);              \
  template class TrainingCache<Scalar>;                                                            \
  template class StackCache<Scalar>;                                                               \
  template class Stream<Scalar>;                                                                   \
  template class StackStep<Scalar>;                                                                \
  template class GRUCell<Scalar>;
EIGENGRU_INSTANTIATE(float)
EIGENGRU_INSTANTIATE(double)
#undef EIGENGRU_INSTANTIATE

}  // namespace eigengru
