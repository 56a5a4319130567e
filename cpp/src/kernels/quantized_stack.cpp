#include "quantized_stack.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <optional>

#include "denormals.hpp"
#include "eigengru/path_counts.hpp"
#include "forward_weights.hpp"
#include "step_clock.hpp"
#include "work_split.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {
namespace detail {
namespace {

/// One layer-direction over the sequence: x (T, B, I); out (T, B, ·), rows ldo apart; h0 and
/// h_n (B, H) or nullptr.
void quantized_layer_forward(const QuantizedLayerWeights& w, Index T, Index B,
                             const StepClock& clock, const float* x, const float* h0, float* out,
                             Index ldo, float* h_n, int threads) {
  const Index H = w.hidden_size, I = w.input_size, G = 3 * H;
  // Each thread allocates its own scratch; a failed allocation is reported after the region,
  // before any output is written.
  std::atomic<bool> scratch_failed{false};
  const bool lengths_given = clock.lengths != nullptr;
#pragma omp parallel num_threads(row_threads(threads, B))
  {
    const FlushDenormals flush;
    const Slice rows = my_share(B);
    const Index n = rows.size();
    // Inputs are projected `ahead` steps at a time: enough rows for the product to be efficient.
    const Index ahead = std::clamp<Index>(64 / std::max<Index>(1, n), 1, std::max<Index>(1, T));
    std::optional<QuantizedStepScratch> scratch;
    RowMatrix<float> gathered, gx, h;
    try {
      scratch.emplace(w, n, ahead * n);
      gathered.resize(lengths_given ? ahead * n : 0, I);
      gx.resize(ahead * n, G);
      h.resize(n, H);
    } catch (...) {
      scratch_failed = true;
    }
#pragma omp barrier
    if (n > 0 && !scratch_failed) {
      if (n == 1 && w.row_step) eigengru::detail::count_path(Path::kQuantizedRowStep);
      if (h0 != nullptr)
        h = Eigen::Map<const RowMatrix<float>>(h0 + rows.begin * H, n, H);
      else
        h.setZero();
      for (Index s = 0; s < T; ++s) {
        if (s % ahead == 0) {
          const Index count = std::min(ahead, T - s);
          if (clock.lengths == nullptr) {  // every row at one time: the thread's rows are adjacent
            for (Index k = 0; k < count; ++k)
              w.w_ih.quantize(x + (clock.time(0, s + k) * B + rows.begin) * I, I, n, scratch->input,
                              k * n);
          } else {
            gather_inputs(x, B, I, clock, rows.begin, n, s, count, gathered.data());
            w.w_ih.quantize(gathered.data(), I, count * n, scratch->input);
          }
          w.w_ih.multiply(scratch->input, count * n, gx.data(), G, w.input_bias.data());
        }
        const auto active = [&](Index i) { return clock.time(rows.begin + i, s) >= 0; };
        quantized_step(w, n, gx.data() + (s % ahead) * n * G, h.data(), *scratch, active);
        for (Index i = 0; i < n; ++i) {
          const Index t = clock.time(rows.begin + i, s);
          if (t >= 0) std::copy_n(h.data() + i * H, H, out + (t * B + rows.begin + i) * ldo);
        }
      }
      if (h_n != nullptr) std::copy_n(h.data(), n * H, h_n + rows.begin * H);
    }
  }
  if (scratch_failed) throw std::bad_alloc();
  zero_padded_outputs(clock, B, H, out, ldo);
}

}  // namespace
}  // namespace detail

QuantizedStack::QuantizedStack(const StackSpec& spec, const QuantizedLayer* layers) : spec_(spec) {
  layers_.reserve(spec.num_layers * spec.directions());
  for (Index k = 0; k < spec.num_layers * spec.directions(); ++k) layers_.emplace_back(layers[k]);
}

void QuantizedStack::forward(Index steps, Index batch, const Index* lengths, const float* x,
                             const float* h0, float* out, float* h_n, int threads) const {
  detail::check_lengths("QuantizedGRU::forward", lengths, batch, steps);
  const Index L = spec_.num_layers, D = spec_.directions(), H = spec_.hidden_size;
  RowMatrix<float> between[2];
  const float* input = x;
  for (Index l = 0; l < L; ++l) {
    float* dst = out;
    if (l < L - 1) {
      between[l % 2].resize(steps * batch, D * H);
      dst = between[l % 2].data();
    }
    // With fewer rows than threads, the two directions run side by side, as the float stack's do.
    detail::for_each_direction(D, batch, threads, [&](Index d, int direction_threads) {
      const Index k = l * D + d;
      const detail::StepClock clock{lengths, steps, d == 1 || spec_.reverse};
      detail::quantized_layer_forward(
          layers_[k], steps, batch, clock, input, h0 != nullptr ? h0 + k * batch * H : nullptr,
          dst + d * H, D * H, h_n != nullptr ? h_n + k * batch * H : nullptr, direction_threads);
    });
    input = dst;
  }
}

QuantizedStream::QuantizedStream(const StackSpec& spec, const QuantizedLayer* layers, Index batch)
    : spec_(spec), batch_(batch) {
  const Index H = spec.hidden_size;
  layers_.reserve(spec.num_layers);
  for (Index l = 0; l < spec.num_layers; ++l) layers_.emplace_back(layers[l]);
  for (const auto& w : layers_) {
    scratch_.emplace_back(w, batch, batch);
    if (batch == 1 && w.row_step) eigengru::detail::count_path(Path::kQuantizedRowStep);
  }
  state_ = Vector<float>::Zero(spec.num_layers * batch * H);
  gx_ = RowMatrix<float>::Zero(batch, 3 * H);
}

void QuantizedStream::step(const float* x, float* out) noexcept {
  const detail::FlushDenormals flush;
  const Index H = spec_.hidden_size, B = batch_;
  const float* input = x;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const auto& w = layers_[l];
    auto& s = scratch_[l];
    float* h = state_.data() + static_cast<Index>(l) * B * H;
    w.w_ih.quantize(input, w.input_size, B, s.input);
    if (B == 1 && w.row_step) {  // the input's product too in the fused step
      w.w_hh.quantize(h, H, 1, s.state);
      detail::quantized_row_step(w, &s.input, nullptr, s.state, h);
    } else {
      w.w_ih.multiply(s.input, B, gx_.data(), 3 * H, w.input_bias.data());
      detail::quantized_step(w, B, gx_.data(), h, s, [](Index) { return true; });
    }
    input = h;
  }
  std::copy_n(state_.data() + (spec_.num_layers - 1) * B * H, B * H, out);
}

void QuantizedStream::reset() noexcept { state_.setZero(); }

void QuantizedStream::reset(const float* h0) noexcept {
  std::copy_n(h0, state_.size(), state_.data());
}

}  // namespace eigengru::EIGENGRU_KERNEL_SET
