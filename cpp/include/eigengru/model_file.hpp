// Reading models saved from Python with eigengru.GRU.save("model.egru").
//
// The .egru format, little-endian, no external dependencies on either side:
//   "EIGENGRU"                      8 bytes
//   version                         u32: 1, or 2 for a quantized model (float models are still
//                                   written as version 1, which every reader takes)
//   scalar size                     u32: 4 (float32) or 8 (float64); 4 when quantized
//   version 2 only: precision       u32: 1 bfloat16, 2 int8 (eigengru::Precision)
//   input_size, hidden_size, num_layers   u32 each
//   flags                           u32: 1 bias, 2 bidirectional, 4 reset_after, 8 batch_first,
//                                   16 reverse, 32 functions, 64 per-sequence dropout (readers
//                                   from before a flag refuse a file that has it)
//   dropout                         f64
//   with flag 64 only: input_dropout, recurrent_dropout         f64 each
//   with flag 32 only, the Nonlinearities when not the standard ones:
//     gate kind, candidate kind     i32 each (Activation::Kind)
//     gate alpha, gate beta, candidate alpha, candidate beta, clip      f64 each
//   the parameters in PyTorch's order (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
//   then _reverse, then the next layer), each row-major, shapes implied by the header; in a
//   quantized model each weight matrix (R, C) is stored as its QuantizedMatrix:
//     bfloat16: R * C bit patterns, u16 each
//     int8:     R scales, f32 each, then R * C values in [-127, 127], i8 each
//   CRC-32 (zlib's) of every byte before it     u32
#pragma once

#include <string>
#include <vector>

#include "eigengru/quantized.hpp"
#include "eigengru/stack.hpp"
#include "eigengru/weights.hpp"

namespace eigengru {

/// A model read from a file: its shape and its parameters, converted to Scalar.
template <typename Scalar>
struct Model {
  StackSpec spec;
  bool bias = true;
  bool batch_first = false;
  std::vector<std::string> names;               // PyTorch's parameter names, in file order
  std::vector<std::vector<Scalar>> parameters;  // row-major, one per name (float models)
  /// kFloat, or the precision of a quantized model (Model<float> only), whose layer-directions
  /// are in `quantized` (PyTorch's order; `parameters` is then empty): for QuantizedGRU and
  /// Stream<float>.
  Precision precision = Precision::kFloat;
  std::vector<QuantizedLayer> quantized;

  /// Views of the parameters, one per layer and direction, for forward() and Stream. Throws
  /// std::logic_error for a quantized model.
  std::vector<LayerWeights<Scalar>> layers() const;
};

/// Reads a .egru file. Throws std::runtime_error naming the file and what is wrong when it is
/// missing, truncated, not an eigengru model, of an unknown version, or fails its checksum, and
/// for a quantized model read as Model<double>.
/// Thread-safe (reads the file, touches no shared state).
template <typename Scalar>
Model<Scalar> load_model(const std::string& path);

/// Writes a .egru file (for example of a model trained in C++); Python reads it with
/// eigengru.GRU.load, or eigengru.QuantizedGRU.load when quantized. The parameters (or the
/// quantized layers) must have the sizes the spec implies. Throws
/// std::invalid_argument on a size mismatch, std::runtime_error when the file cannot be written.
template <typename Scalar>
void save_model(const Model<Scalar>& model, const std::string& path);

}  // namespace eigengru
