// The only place where C++ meets Python: converts NumPy arrays to views, checks what C++ would
// otherwise trust (dtype, contiguity, shapes, writability), and releases the GIL around compute.
// Python-facing conveniences (dtype conversion, defaults, messages in the user's terms) live in
// the eigengru package; this file refuses anything it would have to copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "eigengru/eigengru.hpp"

namespace py = pybind11;
using eigengru::Index;

namespace {

std::string shape_text(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

template <typename Scalar>
void check_array(const py::array& a, const char* name, const std::vector<py::ssize_t>& shape) {
  if (!py::array_t<Scalar>::check_(a))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<Scalar>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  const std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (got != shape)
    throw py::value_error(std::string(name) + ": expected shape " + shape_text(shape) + ", got " +
                          shape_text(got));
}

template <typename Scalar>
const Scalar* in(const py::array& a, const char* name, const std::vector<py::ssize_t>& shape) {
  check_array<Scalar>(a, name, shape);
  return static_cast<const Scalar*>(a.data());
}

template <typename Scalar>
const Scalar* in_or_null(const py::object& a, const char* name,
                         const std::vector<py::ssize_t>& shape) {
  return a.is_none() ? nullptr : in<Scalar>(py::cast<py::array>(a), name, shape);
}

template <typename Scalar>
Scalar* out(py::array& a, const char* name, const std::vector<py::ssize_t>& shape) {
  check_array<Scalar>(a, name, shape);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return static_cast<Scalar*>(a.mutable_data());
}

template <typename Scalar>
Scalar* out_or_null(const py::object& a, const char* name, const std::vector<py::ssize_t>& shape) {
  if (a.is_none()) return nullptr;
  auto array = py::cast<py::array>(a);
  return out<Scalar>(array, name, shape);
}

/// The rows of a (batch, input_size) step input: its first dimension, once it has two.
Index step_rows(const py::array& x) {
  if (x.ndim() != 2) throw py::value_error("x: expected 2 dimensions (batch, input_size)");
  return x.shape(0);
}

/// The leading dimensions of a stack's step input, which its output keeps: (B) of x (B, I), or
/// those of one step of a sequence in either layout, (1, B, I) or (B, 1, I).
std::vector<py::ssize_t> step_leading_dims(const py::array& x) {
  if (x.ndim() == 3 && (x.shape(0) == 1 || x.shape(1) == 1)) return {x.shape(0), x.shape(1)};
  if (x.ndim() != 2)
    throw py::value_error(
        "x: expected (batch, input_size), or one step: (1, batch, input_size) or "
        "(batch, 1, input_size)");
  return {x.shape(0)};
}

/// One layer-direction's weights, checked against the spec: W_ih (3H, in), W_hh (3H, H), and
/// both biases (3H,) or neither.
template <typename Scalar>
eigengru::LayerWeights<Scalar> layer_weights(const py::handle& entry, Index input_size,
                                             const eigengru::StackSpec& spec) {
  const auto parts = py::cast<py::tuple>(entry);
  if (parts.size() != 4)
    throw py::value_error("each layer's weights are (weight_ih, weight_hh, bias_ih, bias_hh)");
  const Index H = spec.hidden_size;
  if (parts[2].is_none() != parts[3].is_none())
    throw py::value_error("bias_ih and bias_hh must both be given or both be None");
  eigengru::LayerWeights<Scalar> w;
  w.input_size = input_size;
  w.hidden_size = H;
  w.reset_after = spec.reset_after;
  w.nonlinearities = spec.nonlinearities;
  w.weight_ih = in<Scalar>(py::cast<py::array>(parts[0]), "weight_ih", {3 * H, input_size});
  w.weight_hh = in<Scalar>(py::cast<py::array>(parts[1]), "weight_hh", {3 * H, H});
  w.bias_ih = in_or_null<Scalar>(parts[2], "bias_ih", {3 * H});
  w.bias_hh = in_or_null<Scalar>(parts[3], "bias_hh", {3 * H});
  return w;
}

template <typename Scalar>
std::vector<eigengru::LayerWeights<Scalar>> stack_weights(const py::list& layers,
                                                          const eigengru::StackSpec& spec) {
  const Index D = spec.directions();
  if (static_cast<Index>(layers.size()) != spec.num_layers * D)
    throw py::value_error("expected " + std::to_string(spec.num_layers * D) +
                          " sets of layer weights, got " + std::to_string(layers.size()));
  std::vector<eigengru::LayerWeights<Scalar>> weights;
  for (Index k = 0; k < spec.num_layers * D; ++k)
    weights.push_back(layer_weights<Scalar>(layers[k], spec.layer_input_size(k / D), spec));
  return weights;
}

/// (kind, alpha, beta) of eigengru::Activation.
eigengru::Activation activation(const py::handle& entry) {
  const auto parts = py::cast<py::tuple>(entry);
  if (parts.size() != 3) throw py::value_error("an activation is (kind, alpha, beta)");
  return {static_cast<eigengru::Activation::Kind>(py::cast<int>(parts[0])),
          py::cast<double>(parts[1]), py::cast<double>(parts[2])};
}

eigengru::StackSpec stack_spec(Index input_size, Index hidden_size, Index num_layers,
                               bool bidirectional, bool reset_after, double dropout, bool reverse,
                               const py::object& functions, double input_dropout,
                               double recurrent_dropout) {
  eigengru::StackSpec spec;
  spec.input_dropout = input_dropout;
  spec.recurrent_dropout = recurrent_dropout;
  if (!functions.is_none()) {
    const auto parts = py::cast<py::tuple>(functions);
    if (parts.size() != 3) throw py::value_error("functions: expected (gate, candidate, clip)");
    spec.nonlinearities = {activation(parts[0]), activation(parts[1]), py::cast<double>(parts[2])};
    if (!spec.nonlinearities.valid())
      throw py::value_error(
          "functions: unknown kind, alpha or beta where the kind takes none, or a clip that is "
          "negative or not finite");
  }
  spec.input_size = input_size;
  spec.hidden_size = hidden_size;
  spec.num_layers = num_layers;
  spec.bidirectional = bidirectional;
  spec.reset_after = reset_after;
  spec.dropout = dropout;
  spec.reverse = reverse;
  return spec;
}

/// A stack's forward over a sequence: x (T, B, I), h0 (L*D, B, H) or None and lengths (B,) or
/// None checked against the spec, (out, h_n) made, then run(T, B, lengths, x, h0, out, h_n)
/// without the GIL (pure C++ on memory the caller keeps alive).
template <typename Scalar, typename Run>
py::tuple sequence_forward(const eigengru::StackSpec& spec, const py::array& x,
                           const py::object& h0, const py::object& lengths, Run run) {
  const Index H = spec.hidden_size, LD = spec.num_layers * spec.directions();
  if (x.ndim() != 3) throw py::value_error("x: expected 3 dimensions (steps, batch, input_size)");
  const Index T = x.shape(0), B = x.shape(1);
  const Scalar* xp = in<Scalar>(x, "x", {T, B, spec.input_size});
  const Scalar* h0p = in_or_null<Scalar>(h0, "h0", {LD, B, H});
  const Index* lp = in_or_null<Index>(lengths, "lengths", {B});
  py::array_t<Scalar> output({T, B, spec.directions() * H}), h_n({LD, B, H});
  Scalar* op = output.mutable_data();
  Scalar* hp = h_n.mutable_data();
  {
    py::gil_scoped_release release;
    run(T, B, lp, xp, h0p, op, hp);
  }
  return py::make_tuple(output, h_n);
}

template <typename Scalar>
py::tuple forward(const eigengru::StackSpec& spec, const py::list& layers, const py::array& x,
                  const py::object& h0, const py::object& lengths, std::uint64_t dropout_seed,
                  eigengru::StackCache<Scalar>* cache) {
  const auto weights = stack_weights<Scalar>(layers, spec);
  return sequence_forward<Scalar>(
      spec, x, h0, lengths,
      [&](Index T, Index B, const Index* lp, const Scalar* xp, const Scalar* h0p, Scalar* op,
          Scalar* hp) {
        if (cache != nullptr)
          eigengru::stack_forward_training(spec, weights.data(), T, B, lp, xp, h0p, op, hp,
                                           dropout_seed, *cache);
        else
          eigengru::stack_forward(spec, weights.data(), T, B, lp, xp, h0p, op, hp);
      });
}

template <typename Scalar>
py::tuple backward(eigengru::StackCache<Scalar>& cache, const py::object& grad_out,
                   const py::object& grad_h_n, const py::list& grads, bool keep_cache) {
  if (!cache.ready())
    throw std::logic_error(
        "backward: no training forward to differentiate (call forward with "
        "train=True first; each backward consumes its forward)");
  const auto& spec = cache.spec();
  const Index T = cache.steps(), B = cache.batch(), H = spec.hidden_size;
  const Index D = spec.directions(), LD = spec.num_layers * D;
  if (static_cast<Index>(grads.size()) != LD)
    throw py::value_error("expected " + std::to_string(LD) + " sets of gradient buffers");
  std::vector<eigengru::LayerGradients<Scalar>> g(LD);
  std::vector<py::array> keep;
  for (Index k = 0; k < LD; ++k) {
    const auto parts = py::cast<py::tuple>(grads[k]);
    const Index in_size = spec.layer_input_size(k / D);
    for (std::size_t j = 0; j < parts.size(); ++j) keep.push_back(py::cast<py::array>(parts[j]));
    auto* a = &keep[keep.size() - parts.size()];
    g[k].weight_ih = out<Scalar>(a[0], "grad_weight_ih", {3 * H, in_size});
    g[k].weight_hh = out<Scalar>(a[1], "grad_weight_hh", {3 * H, H});
    if (cache.has_bias()) {
      if (parts.size() != 4) throw py::value_error("expected gradient buffers for the biases");
      g[k].bias_ih = out<Scalar>(a[2], "grad_bias_ih", {3 * H});
      g[k].bias_hh = out<Scalar>(a[3], "grad_bias_hh", {3 * H});
    }
  }
  const Scalar* go = in_or_null<Scalar>(grad_out, "grad_out", {T, B, D * H});
  const Scalar* ghn = in_or_null<Scalar>(grad_h_n, "grad_h_n", {LD, B, H});
  py::array_t<Scalar> dx({T, B, spec.input_size}), dh0({LD, B, H});
  Scalar* dxp = dx.mutable_data();
  Scalar* dh0p = dh0.mutable_data();
  {
    py::gil_scoped_release release;
    eigengru::stack_backward(cache, go, ghn, dxp, dh0p, g.data(), keep_cache);
  }
  return py::make_tuple(dx, dh0);
}

template <typename Scalar>
void register_scalar(py::module_& m, const char* cache_name) {
  using Cache = eigengru::StackCache<Scalar>;
  py::class_<Cache>(m, cache_name, "What a training forward keeps for its backward.")
      .def(py::init<>())
      .def_property_readonly("ready", &Cache::ready)
      .def_property_readonly("steps", &Cache::steps)
      .def_property_readonly("batch", &Cache::batch)
      .def_property_readonly("nbytes", &Cache::bytes)
      .def(
          "sequence_dropout_masks",
          [](const Cache& cache) {
            py::list masks;
            const auto& spec = cache.spec();
            const Index B = cache.batch(), D = spec.directions();
            for (Index k = 0; k < spec.num_layers * D && cache.ready(); ++k) {
              auto copy = [&](const Scalar* p, Index cols) -> py::object {
                if (p == nullptr) return py::none();
                py::array_t<Scalar> a({B, cols});
                std::copy_n(p, B * cols, a.mutable_data());
                return std::move(a);
              };
              masks.append(py::make_tuple(copy(cache.input_mask(k), spec.layer_input_size(k / D)),
                                          copy(cache.recurrent_mask(k), spec.hidden_size)));
            }
            return masks;
          },
          "The per-sequence dropout masks of the training forward awaiting its backward, per "
          "layer-direction: (input mask (B, in) or None, recurrent mask (B, H) or None), copies.");

  m.def(
      "forward",
      [](const eigengru::StackSpec& spec, const py::list& layers, const py::array_t<Scalar>& x,
         const py::object& h0, const py::object& lengths) {
        return forward<Scalar>(spec, layers, x, h0, lengths, 0, nullptr);
      },
      py::arg("spec"), py::arg("layers"), py::arg("x").noconvert(), py::arg("h0"),
      py::arg("lengths"));
  m.def(
      "forward_training",
      [](const eigengru::StackSpec& spec, const py::list& layers, const py::array_t<Scalar>& x,
         const py::object& h0, const py::object& lengths, std::uint64_t dropout_seed,
         Cache& cache) {
        return forward<Scalar>(spec, layers, x, h0, lengths, dropout_seed, &cache);
      },
      py::arg("spec"), py::arg("layers"), py::arg("x").noconvert(), py::arg("h0"),
      py::arg("lengths"), py::arg("dropout_seed"), py::arg("cache"));
  m.def("backward", &backward<Scalar>, py::arg("cache"), py::arg("grad_out"), py::arg("grad_h_n"),
        py::arg("grads"), py::arg("keep_cache") = false);
}

/// The C++ Stream: packs its own copy of the weights at construction; step() writes the top
/// layer's new state into a caller's array and allocates nothing.
template <typename Scalar>
void register_stream(py::module_& m, const char* name) {
  using Stream = eigengru::Stream<Scalar>;
  py::class_<Stream> stream(m, name, "A unidirectional stack run one time step per call.");
  stream.def(py::init([](const eigengru::StackSpec& spec, const py::list& layers, Index batch) {
               const auto weights = stack_weights<Scalar>(layers, spec);
               return std::make_unique<Stream>(spec, weights.data(), batch);
             }),
             py::arg("spec"), py::arg("layers"), py::arg("batch"));
  if constexpr (std::is_same_v<Scalar, float>)
    stream.def(py::init([](const eigengru::QuantizedGRU& q, Index batch) {
                 return std::make_unique<Stream>(q.spec(), q.layers().data(), batch);
               }),
               py::arg("quantized"), py::arg("batch"));
  stream.def_property_readonly("batch", &Stream::batch)
      .def(
          "step",
          // Keeps the GIL: a step takes microseconds, and releasing it would add to each one.
          [](Stream& s, const py::array& x, py::array& result) {
            const Index B = s.batch(), H = s.spec().hidden_size;
            const Scalar* xp = in<Scalar>(x, "x", {B, s.spec().input_size});
            s.step(xp, out<Scalar>(result, "out", {B, H}));
          },
          py::arg("x"), py::arg("out"))
      .def("reset", [](Stream& s) { s.reset(); })
      .def(
          "set_state",
          [](Stream& s, const py::array& h) {
            const Index L = s.spec().num_layers, B = s.batch(), H = s.spec().hidden_size;
            s.reset(in<Scalar>(h, "state", {L, B, H}));
          },
          py::arg("state"))
      .def("state", [](const Stream& s) {
        const Index L = s.spec().num_layers, B = s.batch(), H = s.spec().hidden_size;
        py::array_t<Scalar> copy({L, B, H});
        std::copy_n(s.state(), L * B * H, copy.mutable_data());
        return copy;
      });
}

/// The C++ StackStep: one inference step of a whole stack, the state passed in and out. Keeps
/// the GIL, as a cell does.
template <typename Scalar>
void register_stack_step(py::module_& m, const char* name) {
  using StackStep = eigengru::StackStep<Scalar>;
  py::class_<StackStep>(m, name, "A stack's layer-directions packed for one-step calls.")
      .def(py::init([](const eigengru::StackSpec& spec, const py::list& layers) {
             const auto weights = stack_weights<Scalar>(layers, spec);
             return std::make_unique<StackStep>(spec, weights.data());
           }),
           py::arg("spec"), py::arg("layers"))
      .def(
          "forward",
          [](StackStep& s, const py::array& x, const py::object& h0) {
            const eigengru::StackSpec& spec = s.spec();
            const std::vector<py::ssize_t> leading = step_leading_dims(x);
            const Index B = leading.size() == 1 ? leading[0] : leading[0] * leading[1];
            const Index H = spec.hidden_size, D = spec.directions();
            const Index LD = spec.num_layers * D;
            std::vector<py::ssize_t> x_shape = leading, out_shape = leading;
            x_shape.push_back(spec.input_size);
            out_shape.push_back(D * H);
            const Scalar* xp = in<Scalar>(x, "x", x_shape);
            const Scalar* h0p = in_or_null<Scalar>(h0, "h0", {LD, B, H});
            py::array_t<Scalar> result(out_shape), h_n({LD, B, H});
            s.forward(B, xp, h0p, h_n.mutable_data(), result.mutable_data(),
                      eigengru::get_num_threads());
            return py::make_tuple(result, h_n);
          },
          py::arg("x"), py::arg("h0"));
}

/// The C++ GRUCell: one layer's step, forward and backward, on a caller's arrays. Calls keep
/// the GIL: a step takes microseconds, and releasing it would add to each one; holding it also
/// keeps Python threads that share a module from running one cell's scratch at once.
template <typename Scalar>
void register_cell(py::module_& m, const char* name) {
  using Cell = eigengru::GRUCell<Scalar>;
  py::class_<Cell>(m, name, "One GRU layer applied one time step per call.")
      .def(py::init([](const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
                       const py::object& b_hh, bool reset_after) {
             if (w_hh.ndim() != 2 || w_ih.ndim() != 2)
               throw py::value_error("weight_ih and weight_hh: expected 2 dimensions");
             const Index H = w_hh.shape(1), I = w_ih.shape(1);
             return std::make_unique<Cell>(layer_weights<Scalar>(
                 py::make_tuple(w_ih, w_hh, b_ih, b_hh), I,
                 stack_spec(I, H, 1, false, reset_after, 0.0, false, py::none(), 0.0, 0.0)));
           }),
           py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"),
           py::arg("reset_after"))
      .def_property_readonly("record_size", &Cell::record_size)
      .def(
          "forward",
          [](Cell& c, const py::array& x, const py::array& h, py::array& h_next,
             const py::object& record) {
            const Index I = c.input_size(), H = c.hidden_size(), B = step_rows(x);
            const Scalar* xp = in<Scalar>(x, "x", {B, I});
            const Scalar* hp = in<Scalar>(h, "h", {B, H});
            Scalar* np = out<Scalar>(h_next, "h_next", {B, H});
            c.forward(B, xp, hp, np, out_or_null<Scalar>(record, "record", {B, c.record_size()}));
          },
          py::arg("x"), py::arg("h"), py::arg("h_next"), py::arg("record"))
      .def(
          "backward",
          [](Cell& c, const py::array& x, const py::array& h, py::array& record,
             const py::array& grad_h_next, const py::object& dx, py::array& dh,
             const py::tuple& grads, bool accumulate) {
            const Index I = c.input_size(), H = c.hidden_size(), G = 3 * H, B = step_rows(x);
            const Scalar* xp = in<Scalar>(x, "x", {B, I});
            const Scalar* hp = in<Scalar>(h, "h", {B, H});
            Scalar* rp = out<Scalar>(record, "record", {B, c.record_size()});
            const Scalar* gp = in<Scalar>(grad_h_next, "grad_h_next", {B, H});
            Scalar* dxp = out_or_null<Scalar>(dx, "dx", {B, I});
            Scalar* dhp = out<Scalar>(dh, "dh", {B, H});
            if (grads.size() != 4)
              throw py::value_error("grads: expected (weight_ih, weight_hh, bias_ih, bias_hh)");
            const eigengru::LayerGradients<Scalar> g{
                out_or_null<Scalar>(grads[0], "grad_weight_ih", {G, I}),
                out_or_null<Scalar>(grads[1], "grad_weight_hh", {G, H}),
                out_or_null<Scalar>(grads[2], "grad_bias_ih", {G}),
                out_or_null<Scalar>(grads[3], "grad_bias_hh", {G})};
            c.backward(B, xp, hp, rp, gp, dxp, dhp, g, accumulate);
          },
          py::arg("x"), py::arg("h"), py::arg("record"), py::arg("grad_h_next"), py::arg("dx"),
          py::arg("dh"), py::arg("grads"), py::arg("accumulate"));
}

eigengru::Precision precision_of(const std::string& name) {
  if (name == "bfloat16") return eigengru::Precision::kBfloat16;
  if (name == "int8") return eigengru::Precision::kInt8;
  throw py::value_error("precision: expected 'bfloat16' or 'int8', got '" + name + "'");
}

/// A quantized matrix's stored arrays: (values, scales): int8 values and float32 scales, or
/// bfloat16 bit patterns (uint16) and None.
py::tuple matrix_arrays(const eigengru::QuantizedMatrix& m) {
  if (m.precision == eigengru::Precision::kBfloat16) {
    py::array_t<std::uint16_t> values({m.rows, m.cols});
    std::copy(m.bfloat16.begin(), m.bfloat16.end(), values.mutable_data());
    return py::make_tuple(values, py::none());
  }
  py::array_t<std::int8_t> values({m.rows, m.cols});
  std::copy(m.int8.begin(), m.int8.end(), values.mutable_data());
  py::array_t<float> scales(m.rows);
  std::copy(m.scales.begin(), m.scales.end(), scales.mutable_data());
  return py::make_tuple(values, scales);
}

py::dict model_config(const eigengru::Model<float>& model) {
  const eigengru::StackSpec& s = model.spec;
  const eigengru::Nonlinearities& f = s.nonlinearities;
  py::dict config;
  config["input_size"] = s.input_size;
  config["hidden_size"] = s.hidden_size;
  config["num_layers"] = s.num_layers;
  config["bias"] = model.bias;
  config["batch_first"] = model.batch_first;
  config["dropout"] = s.dropout;
  config["bidirectional"] = s.bidirectional;
  config["reset_after"] = s.reset_after;
  config["reverse"] = s.reverse;
  config["input_dropout"] = s.input_dropout;
  config["recurrent_dropout"] = s.recurrent_dropout;
  config["function_kinds"] =
      py::make_tuple(static_cast<int>(f.gate.kind), static_cast<int>(f.candidate.kind));
  config["function_values"] =
      py::make_tuple(f.gate.alpha, f.gate.beta, f.candidate.alpha, f.candidate.beta, f.clip);
  config["precision"] = eigengru::precision_name(model.precision);
  return config;
}

void register_quantized(py::module_& m) {
  using eigengru::QuantizedGRU;
  py::class_<QuantizedGRU>(m, "QuantizedGRU", "A stack with bfloat16 or int8 weights.")
      .def(py::init([](const eigengru::StackSpec& spec, const py::list& layers,
                       const std::string& precision) {
             const auto p = precision_of(precision);
             std::vector<eigengru::QuantizedLayer> quantized;
             for (const auto& w : stack_weights<float>(layers, spec))
               quantized.push_back(eigengru::quantize(w, p));
             return std::make_unique<QuantizedGRU>(spec, std::move(quantized));
           }),
           py::arg("spec"), py::arg("layers"), py::arg("precision"))
      .def_property_readonly(
          "precision",
          [](const QuantizedGRU& q) { return eigengru::precision_name(q.precision()); })
      .def(
          "forward",
          [](const QuantizedGRU& q, const py::array& x, const py::object& h0,
             const py::object& lengths) {
            return sequence_forward<float>(
                q.spec(), x, h0, lengths,
                [&](Index T, Index B, const Index* lp, const float* xp, const float* h0p, float* op,
                    float* hp) { q.forward(T, B, lp, xp, h0p, op, hp); });
          },
          py::arg("x"), py::arg("h0"), py::arg("lengths"))
      .def("layers",  // per layer-direction: (w_ih values, scales, w_hh values, scales, b_ih, b_hh)
           [](const QuantizedGRU& q) {
             py::list result;
             for (const auto& layer : q.layers()) {
               py::object b_ih = py::none(), b_hh = py::none();
               if (layer.has_bias()) {
                 b_ih = py::array_t<float>(layer.bias_ih.size(), layer.bias_ih.data());
                 b_hh = py::array_t<float>(layer.bias_hh.size(), layer.bias_hh.data());
               }
               result.append(py::make_tuple(matrix_arrays(layer.weight_ih),
                                            matrix_arrays(layer.weight_hh), b_ih, b_hh));
             }
             return result;
           })
      .def(
          "save",
          [](const QuantizedGRU& q, const std::string& path, bool bias, bool batch_first) {
            eigengru::Model<float> model;
            model.spec = q.spec();
            model.bias = bias;
            model.batch_first = batch_first;
            model.precision = q.precision();
            model.quantized = q.layers();
            eigengru::save_model(model, path);
          },
          py::arg("path"), py::arg("bias"), py::arg("batch_first"))
      .def_static(
          "load",
          [](const std::string& path) {
            auto model = eigengru::load_model<float>(path);
            if (model.precision == eigengru::Precision::kFloat)
              throw py::value_error(path +
                                    ": a float model, not a quantized one (read it with "
                                    "eigengru.GRU.load and call quantize)");
            py::dict config = model_config(model);
            auto q = std::make_unique<QuantizedGRU>(model.spec, std::move(model.quantized));
            return py::make_tuple(config, std::move(q));
          },
          py::arg("path"));
  m.def(
      "quantized_kernel",
      [](const std::string& precision) {
        return eigengru::quantized_kernel(precision_of(precision));
      },
      py::arg("precision"));
}

py::dict build_info() {
  py::dict info;
  info["version"] = EIGENGRU_VERSION;
#if defined(__clang__)
  info["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
  info["compiler"] = "gcc " __VERSION__;
#endif
  info["eigen"] = EIGENGRU_EIGEN_VERSION;
  info["isa"] = eigengru::isa();
  info["isas"] = eigengru::compiled_isas();
  info["simd"] = eigengru::isa_instructions();
  info["flags"] = EIGENGRU_CXX_FLAGS;
  info["openmp"] = _OPENMP;
  return info;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "eigengru's C++ core. Use the eigengru package; this module trusts its caller.";
  // Choose the kernel set now, so that an EIGENGRU_ISA this CPU cannot run fails the import
  // (pybind11 turns the exception into an ImportError with its message).
  eigengru::isa();
  py::class_<eigengru::StackSpec>(m, "StackSpec", "The shape of a stack of GRU layers.")
      .def(py::init(&stack_spec), py::arg("input_size"), py::arg("hidden_size"),
           py::arg("num_layers"), py::arg("bidirectional"), py::arg("reset_after"),
           py::arg("dropout"), py::arg("reverse") = false, py::arg("functions") = py::none(),
           py::arg("input_dropout") = 0.0, py::arg("recurrent_dropout") = 0.0);
  register_scalar<float>(m, "TrainingCacheFloat32");
  register_scalar<double>(m, "TrainingCacheFloat64");
  register_stream<float>(m, "StreamFloat32");
  register_stream<double>(m, "StreamFloat64");
  register_stack_step<float>(m, "StackStepFloat32");
  register_stack_step<double>(m, "StackStepFloat64");
  register_cell<float>(m, "GRUCellFloat32");
  register_cell<double>(m, "GRUCellFloat64");
  register_quantized(m);
  m.def("set_num_threads", &eigengru::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &eigengru::get_num_threads);
  m.def("build_info", &build_info);
  m.def("supported_isas", &eigengru::supported_isas);  // the compiled sets this CPU runs
  m.def("path_counts", [] {  // for tests that target one of the core's paths
    py::dict counts;
    counts["forward_by_units"] = eigengru::path_count(eigengru::Path::kForwardByUnits);
    counts["backward_products_in_loop"] =
        eigengru::path_count(eigengru::Path::kBackwardProductsInLoop);
    counts["backward_partials"] = eigengru::path_count(eigengru::Path::kBackwardPartials);
    counts["backward_shared_products"] =
        eigengru::path_count(eigengru::Path::kBackwardSharedProducts);
    counts["backward_products_after"] =
        eigengru::path_count(eigengru::Path::kBackwardProductsAfter);
    counts["directions_side_by_side"] = eigengru::path_count(eigengru::Path::kDirectionsSideBySide);
    counts["streamed_records"] = eigengru::path_count(eigengru::Path::kStreamedRecords);
    counts["quantized_row_step"] = eigengru::path_count(eigengru::Path::kQuantizedRowStep);
    return counts;
  });
  m.attr("__version__") = EIGENGRU_VERSION;
}
