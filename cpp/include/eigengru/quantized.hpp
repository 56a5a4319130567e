// Reduced-precision inference: GRU stacks whose weights are bfloat16 or int8.
//
// Both weight matrices of every layer-direction are quantized; biases, states and gates stay
// float32. Each matrix product quantizes its other operand as it goes:
//   bfloat16: weights and operand rounded to bfloat16 (to nearest, ties to even), products
//             summed in float32 (AVX512-BF16's vdpbf16ps where the CPU has it; under the avx2
//             kernel set, float multiply-adds on the bfloat16 weights widened in registers,
//             which sum exactly as the float kernel does on the same values);
//   int8:     each weight row w scaled by s_w = max|w| / 127 and rounded to [-127, 127]; each
//             operand row a (an input, a state) by s_a = max|a| / 127 when the product runs;
//             products summed exactly in int32 (AVX512-VNNI's vpdpbusd where the CPU has it,
//             AVX2's vpmaddubsw and vpmaddwd under the avx2 kernel set: the same sums), then
//             the sum times s_w * s_a.
// Otherwise (under the baseline set, or on an AVX-512 CPU without VNNI or BF16 for that
// precision) the float kernel multiplies the values the quantized weights and operands stand
// for, in float32 sums.
// Quantized models are for inference: there is no backward.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eigengru/nonlinearities.hpp"
#include "eigengru/stack_spec.hpp"
#include "eigengru/types.hpp"
#include "eigengru/weights.hpp"

namespace eigengru {

/// How a model's weights are stored.
enum class Precision : int { kFloat = 0, kBfloat16 = 1, kInt8 = 2 };

/// "float", "bfloat16" or "int8".
const char* precision_name(Precision precision);

/// One weight matrix (rows, cols), row-major, quantized.
struct QuantizedMatrix {
  Precision precision = Precision::kInt8;
  Index rows = 0, cols = 0;
  std::vector<std::uint16_t> bfloat16;  ///< rows * cols bfloat16 bit patterns (bfloat16 only)
  std::vector<std::int8_t> int8;        ///< rows * cols values in [-127, 127] (int8 only)
  std::vector<float> scales;            ///< one per row: value = scale * int8 (int8 only)

  /// The most columns an int8 matrix may have: its products' int32 sums of up to 255 * 127 per
  /// column must not overflow.
  static constexpr Index kMaxInt8Columns = 65535;

  /// Quantizes w (rows, cols), row-major; precision kBfloat16 or kInt8. Throws
  /// std::invalid_argument for another precision, a non-finite weight, or int8 with more than
  /// kMaxInt8Columns columns.
  static QuantizedMatrix quantize(const float* w, Index rows, Index cols, Precision precision);

  /// The value that entry (r, c) stands for.
  float value(Index r, Index c) const;

  /// Whether the arrays have the sizes the shape and precision imply, every int8 value is in
  /// [-127, 127] and every scale finite and non-negative, and an int8 matrix has at most
  /// kMaxInt8Columns columns.
  bool valid() const;
};

/// One layer-direction of a quantized model: the float model's LayerWeights, quantized.
struct QuantizedLayer {
  Index input_size = 0;
  Index hidden_size = 0;
  bool reset_after = true;
  Nonlinearities nonlinearities;
  QuantizedMatrix weight_ih;   ///< (3H, I)
  QuantizedMatrix weight_hh;   ///< (3H, H)
  std::vector<float> bias_ih;  ///< (3H), or empty for a layer without biases
  std::vector<float> bias_hh;  ///< (3H), or empty for a layer without biases

  bool has_bias() const { return !bias_ih.empty(); }
  Precision precision() const { return weight_ih.precision; }
};

/// Quantizes one layer-direction's weights (float32) to bfloat16 or int8. Throws
/// std::invalid_argument for another precision or weights that are missing or not finite.
QuantizedLayer quantize(const LayerWeights<float>& weights, Precision precision);

/// Whether `layer` can be layer-direction (l, d) of `spec`: sizes, formulation and functions as
/// the spec says, both matrices of one valid precision, biases both present or both absent.
bool matches_spec(const QuantizedLayer& layer, const StackSpec& spec, Index l);

namespace detail {
class QuantizedStackInterface;
}  // namespace detail

/// A quantized stack ready to run: stack_forward() with bfloat16 or int8 weights.
///
/// Thread safety: forward() may run on several threads at once.
class QuantizedGRU {
 public:
  /// layers: spec.num_layers * spec.directions() entries in PyTorch's order, of one precision,
  /// copied and packed. Throws std::invalid_argument when they do not match the spec.
  QuantizedGRU(const StackSpec& spec, std::vector<QuantizedLayer> layers);
  ~QuantizedGRU();
  QuantizedGRU(QuantizedGRU&&) noexcept;
  QuantizedGRU& operator=(QuantizedGRU&&) noexcept;

  /// stack_forward() of this stack: x (steps, batch, input_size), h0 (L * D, batch, H) or
  /// nullptr for zeros, out (steps, batch, D * H) and h_n (L * D, batch, H), lengths as there.
  /// Throws std::invalid_argument for bad sizes or lengths. Results depend on neither the
  /// thread count nor the batch's other rows.
  void forward(Index steps, Index batch, const Index* lengths, const float* x, const float* h0,
               float* out, float* h_n) const;

  const StackSpec& spec() const { return spec_; }
  const std::vector<QuantizedLayer>& layers() const { return layers_; }
  Precision precision() const { return layers_.front().precision(); }

 private:
  StackSpec spec_;
  std::vector<QuantizedLayer> layers_;
  std::unique_ptr<detail::QuantizedStackInterface> packed_;
};

/// Which product kernel a precision runs on in the kernel set in use: "avx512-bf16" or
/// "avx512-vnni" (the CPU's dot-product instructions), "avx2-maddubs" (int8 from AVX2's
/// byte and word multiply-adds, the same sums as VNNI's), "avx2-fma" (bfloat16 from AVX2's float
/// multiply-adds on the weights widened in registers: the portable kernel's sums, from half the
/// bytes), or "portable" (the float kernel on the values the quantized weights and operands
/// stand for: int8's numbers to float32 rounding, at about the float model's speed).
std::string quantized_kernel(Precision precision);

}  // namespace eigengru
