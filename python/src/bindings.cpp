// The only place where C++ meets Python: converts NumPy arrays to views, checks what C++ would
// otherwise trust (dtype, contiguity, shapes, writability), and releases the GIL around compute.
// Python-facing conveniences (dtype conversion, defaults, messages in the user's terms) live in
// the eigengru package; this file refuses anything it would have to copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
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
                         std::string(py::str(py::dtype::of<Scalar>())) +
                         ", got " + std::string(py::str(a.dtype())));
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

/// One layer-direction's weights checked against each other; sizes come from weight_hh (3H, H)
/// and weight_ih (3H, I).
template <typename Scalar>
eigengru::LayerWeights<Scalar> layer_weights(const py::array& w_ih, const py::array& w_hh,
                                             const py::object& b_ih, const py::object& b_hh,
                                             bool reset_after) {
  if (w_hh.ndim() != 2 || w_hh.shape(0) != 3 * w_hh.shape(1) || w_hh.shape(1) < 1)
    throw py::value_error("weight_hh: expected shape (3 * hidden_size, hidden_size), got " +
                          shape_text({w_hh.shape(), w_hh.shape() + w_hh.ndim()}));
  const Index H = w_hh.shape(1);
  if (w_ih.ndim() != 2 || w_ih.shape(1) < 1)
    throw py::value_error("weight_ih: expected shape (3 * hidden_size, input_size) = (" +
                          std::to_string(3 * H) + ", input_size)");
  const Index I = w_ih.shape(1);
  if (b_ih.is_none() != b_hh.is_none())
    throw py::value_error("bias_ih and bias_hh must both be given or both be None");
  eigengru::LayerWeights<Scalar> w;
  w.input_size = I;
  w.hidden_size = H;
  w.reset_after = reset_after;
  w.weight_ih = in<Scalar>(w_ih, "weight_ih", {3 * H, I});
  w.weight_hh = in<Scalar>(w_hh, "weight_hh", {3 * H, H});
  w.bias_ih = in_or_null<Scalar>(b_ih, "bias_ih", {3 * H});
  w.bias_hh = in_or_null<Scalar>(b_hh, "bias_hh", {3 * H});
  return w;
}

template <typename Scalar>
py::tuple forward(const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
                  const py::object& b_hh, bool reset_after, const py::array& x,
                  const py::object& h0, eigengru::TrainingCache<Scalar>* cache) {
  const auto w = layer_weights<Scalar>(w_ih, w_hh, b_ih, b_hh, reset_after);
  const Index H = w.hidden_size;
  if (x.ndim() != 3) throw py::value_error("x: expected 3 dimensions (steps, batch, input_size)");
  const Index T = x.shape(0), B = x.shape(1);
  const Scalar* xp = in<Scalar>(x, "x", {T, B, w.input_size});
  const Scalar* h0p = in_or_null<Scalar>(h0, "h0", {B, H});
  py::array_t<Scalar> output({T, B, H}), h_n({B, H});
  Scalar* op = output.mutable_data();
  Scalar* hp = h_n.mutable_data();
  {
    py::gil_scoped_release release;  // pure C++ on memory the caller keeps alive
    if (cache != nullptr)
      eigengru::forward_training(w, T, B, xp, h0p, op, hp, *cache);
    else
      eigengru::forward(w, T, B, xp, h0p, op, hp);
  }
  return py::make_tuple(output, h_n);
}

template <typename Scalar>
py::tuple backward(eigengru::TrainingCache<Scalar>& cache, const py::object& grad_out,
                   const py::object& grad_h_n, py::array& g_w_ih, py::array& g_w_hh,
                   const py::object& g_b_ih, const py::object& g_b_hh) {
  if (!cache.ready())
    throw std::logic_error("backward: no training forward to differentiate (call forward with "
                           "train=True first; each backward consumes its forward)");
  const Index T = cache.steps(), B = cache.batch(), H = cache.hidden_size(),
              I = cache.input_size();
  eigengru::LayerGradients<Scalar> g;
  g.weight_ih = out<Scalar>(g_w_ih, "grad_weight_ih", {3 * H, I});
  g.weight_hh = out<Scalar>(g_w_hh, "grad_weight_hh", {3 * H, H});
  if (cache.has_bias()) {
    auto b_ih = py::cast<py::array>(g_b_ih), b_hh = py::cast<py::array>(g_b_hh);
    g.bias_ih = out<Scalar>(b_ih, "grad_bias_ih", {3 * H});
    g.bias_hh = out<Scalar>(b_hh, "grad_bias_hh", {3 * H});
  }
  const Scalar* go = in_or_null<Scalar>(grad_out, "grad_out", {T, B, H});
  const Scalar* ghn = in_or_null<Scalar>(grad_h_n, "grad_h_n", {B, H});
  py::array_t<Scalar> dx({T, B, I}), dh0({B, H});
  Scalar* dxp = dx.mutable_data();
  Scalar* dh0p = dh0.mutable_data();
  {
    py::gil_scoped_release release;
    eigengru::backward(cache, go, ghn, dxp, dh0p, g);
  }
  return py::make_tuple(dx, dh0);
}

template <typename Scalar>
void register_scalar(py::module_& m, const char* cache_name) {
  py::class_<eigengru::TrainingCache<Scalar>>(m, cache_name,
                                             "What a training forward keeps for its backward.")
      .def(py::init<>())
      .def_property_readonly("ready", &eigengru::TrainingCache<Scalar>::ready)
      .def_property_readonly("steps", &eigengru::TrainingCache<Scalar>::steps)
      .def_property_readonly("batch", &eigengru::TrainingCache<Scalar>::batch)
      .def_property_readonly("nbytes", &eigengru::TrainingCache<Scalar>::bytes);

  m.def(
      "forward",
      [](const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
         const py::object& b_hh, bool reset_after, const py::array_t<Scalar>& x,
         const py::object& h0) {
        return forward<Scalar>(w_ih, w_hh, b_ih, b_hh, reset_after, x, h0, nullptr);
      },
      py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"),
      py::arg("reset_after"), py::arg("x").noconvert(), py::arg("h0"));
  m.def(
      "forward_training",
      [](const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
         const py::object& b_hh, bool reset_after, const py::array_t<Scalar>& x,
         const py::object& h0, eigengru::TrainingCache<Scalar>& cache) {
        return forward<Scalar>(w_ih, w_hh, b_ih, b_hh, reset_after, x, h0, &cache);
      },
      py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"),
      py::arg("reset_after"), py::arg("x").noconvert(), py::arg("h0"), py::arg("cache"));
  m.def("backward", &backward<Scalar>, py::arg("cache"), py::arg("grad_out"),
        py::arg("grad_h_n"), py::arg("grad_weight_ih"), py::arg("grad_weight_hh"),
        py::arg("grad_bias_ih"), py::arg("grad_bias_hh"));
}

py::dict build_info() {
  py::dict info;
  info["version"] = EIGENGRU_VERSION;
#if defined(__clang__)
  info["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
  info["compiler"] = "gcc " __VERSION__;
#endif
  info["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) +
                  "." + std::to_string(EIGEN_MINOR_VERSION);
  info["simd"] = Eigen::SimdInstructionSetsInUse();
  info["openmp"] = _OPENMP;
  return info;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "eigengru's C++ core. Use the eigengru package; this module trusts its caller.";
  register_scalar<float>(m, "TrainingCacheFloat32");
  register_scalar<double>(m, "TrainingCacheFloat64");
  m.def("set_num_threads", &eigengru::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &eigengru::get_num_threads);
  m.def("build_info", &build_info);
  m.attr("__version__") = EIGENGRU_VERSION;
}
