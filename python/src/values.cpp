// python/src/values.cpp: see values.hpp.
#include "values.hpp"

#include <pybind11/numpy.h>

#include <cstring>
#include <string>
#include <vector>

namespace loom::python {

namespace {

constexpr const char* storage_capsule = "loom.storage";

// A loom tensor's buffer as a NumPy array: the array holds the storage (through a capsule), never a copy.
py::object tensor_to_numpy(const tensor& t) {
  if (t.device() >= 0)
    throw py::type_error("a loom tensor on GPU " + std::to_string(t.device()) +
                         " has no host buffer for NumPy (copy it to the host in the graph first)");
  const char* name = nullptr;
  switch (t.type()) {
    case dtype::f32: name = "float32"; break;
    case dtype::f64: name = "float64"; break;
    case dtype::f16: name = "float16"; break;
    case dtype::i8: name = "int8"; break;
    case dtype::i32: name = "int32"; break;
    case dtype::i64: name = "int64"; break;
    case dtype::u8: name = "uint8"; break;
    case dtype::bf16: throw py::type_error("a loom bf16 tensor has no NumPy dtype");
  }
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t step = static_cast<py::ssize_t>(dtype_size(t.type()));
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = step;
    step *= shape[i];
  }
  auto* held = new std::shared_ptr<const storage>(t.data());
  py::capsule owner(held, storage_capsule, [](PyObject* c) {
    delete static_cast<std::shared_ptr<const storage>*>(PyCapsule_GetPointer(c, storage_capsule));
  });
  py::array a(py::dtype(name), shape, strides, t.data()->data(), owner);
  a.attr("flags").attr("writeable") = false;  // loom shares this buffer: values are immutable
  return a;
}

dtype dtype_of(const py::buffer_info& b) {
  std::string f = b.format;
  if (!f.empty() && (f[0] == '<' || f[0] == '=' || f[0] == '@' || f[0] == '!' || f[0] == '>')) {
    if (f[0] == '>' || f[0] == '!') throw py::type_error("a big-endian buffer has no loom dtype");
    f.erase(0, 1);
  }
  auto size = b.itemsize;
  if (f == "f" && size == 4) return dtype::f32;
  if (f == "d" && size == 8) return dtype::f64;
  if (f == "e" && size == 2) return dtype::f16;
  if (f == "b" && size == 1) return dtype::i8;
  if (f == "B" && size == 1) return dtype::u8;
  if ((f == "i" || f == "l" || f == "q") && size == 4) return dtype::i32;
  if ((f == "i" || f == "l" || f == "q") && size == 8) return dtype::i64;
  throw py::type_error("a buffer of format `" + b.format + "` (item size " + std::to_string(size) +
                       ") has no loom dtype: loom tensors hold float16/32/64, int8/32/64 or uint8");
}

bool c_contiguous(const py::buffer_info& b) {
  py::ssize_t step = b.itemsize;
  for (std::size_t i = b.shape.size(); i-- > 0;) {
    if (b.shape[i] != 1 && b.strides[i] != step) return false;
    step *= b.shape[i];
  }
  return true;
}

// The storage of a read-only array that loom made (tensor_to_numpy), viewing all of it: shared again.
std::shared_ptr<const storage> loom_storage_of(py::handle o, const py::buffer_info& b) {
  if (!b.readonly || !py::hasattr(o, "base")) return nullptr;
  py::object base = o.attr("base");
  if (!PyCapsule_CheckExact(base.ptr()) || PyCapsule_GetName(base.ptr()) == nullptr ||
      std::strcmp(PyCapsule_GetName(base.ptr()), storage_capsule) != 0)
    return nullptr;
  auto* held = static_cast<std::shared_ptr<const storage>*>(PyCapsule_GetPointer(base.ptr(), storage_capsule));
  if (held == nullptr || *held == nullptr) return nullptr;
  auto nbytes = static_cast<std::size_t>(b.size * b.itemsize);
  if (static_cast<const void*>((*held)->data()) != b.ptr || (*held)->size() != nbytes) return nullptr;
  return *held;
}

value buffer_to_tensor(py::handle o) {
  py::buffer buf = py::reinterpret_borrow<py::buffer>(o);
  py::buffer_info b = buf.request();
  if (!c_contiguous(b)) {
    py::object contiguous = py::module_::import("numpy").attr("ascontiguousarray")(o);
    return buffer_to_tensor(contiguous);
  }
  dtype t = dtype_of(b);
  std::vector<std::int64_t> shape(b.shape.begin(), b.shape.end());
  if (auto shared = loom_storage_of(o, b)) return value(tensor(t, std::move(shape), std::move(shared)));
  // A writable buffer can change after it was sent: loom keeps a copy (values are immutable).
  std::vector<std::byte> bytes(static_cast<std::size_t>(b.size * b.itemsize));
  if (!bytes.empty()) std::memcpy(bytes.data(), b.ptr, bytes.size());
  return value(tensor(t, std::move(shape), std::make_shared<host_storage>(std::move(bytes))));
}

value to_value_at(py::handle o, const std::string& path) {
  PyObject* p = o.ptr();
  if (p == Py_None) return value{};
  if (PyBool_Check(p)) return value(p == Py_True);
  if (PyLong_Check(p)) {
    int overflow = 0;
    long long i = PyLong_AsLongLongAndOverflow(p, &overflow);
    if (overflow == 0) return value(static_cast<std::int64_t>(i));
    throw py::type_error("int " + py::str(o).cast<std::string>() + (path.empty() ? "" : " at " + path) +
                         " does not fit loom's int (64-bit, signed)");
  }
  if (PyFloat_Check(p)) return value(PyFloat_AS_DOUBLE(p));
  if (PyUnicode_Check(p)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(p, &n);
    if (s == nullptr) throw py::error_already_set();
    return value(std::string(s, static_cast<std::size_t>(n)));
  }
  if (PyBytes_Check(p) || PyByteArray_Check(p)) {
    const char* s = PyBytes_Check(p) ? PyBytes_AS_STRING(p) : PyByteArray_AS_STRING(p);
    auto n = static_cast<std::size_t>(PyBytes_Check(p) ? PyBytes_GET_SIZE(p) : PyByteArray_GET_SIZE(p));
    bytes b(n);
    if (n) std::memcpy(b.data(), s, n);
    return value(std::move(b));
  }
  if (PyList_Check(p) || PyTuple_Check(p)) {
    value_list l;
    py::sequence seq = py::reinterpret_borrow<py::sequence>(o);
    l.reserve(seq.size());
    std::size_t i = 0;
    for (auto item : seq) {
      l.push_back(to_value_at(item, path + "[" + std::to_string(i) + "]"));
      ++i;
    }
    return value(std::move(l));
  }
  if (PyDict_Check(p)) {
    value_map m;
    m.reserve(static_cast<std::size_t>(PyDict_Size(p)));
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(o)) {
      if (!PyUnicode_Check(k.ptr()))
        throw py::type_error("a dict key of type " + std::string(Py_TYPE(k.ptr())->tp_name) +
                             (path.empty() ? "" : " at " + path) + ": loom maps have str keys");
      auto key = k.cast<std::string>();
      m.emplace_back(key, to_value_at(v, path + "[" + key + "]"));
    }
    return value(std::move(m));
  }
  if (PyObject_CheckBuffer(p)) return buffer_to_tensor(o);
  throw py::type_error(std::string("a ") + Py_TYPE(p)->tp_name + (path.empty() ? "" : " at " + path) +
                       " has no loom value type (None, bool, int, float, str, bytes, list, dict, or an array)");
}

}  // namespace

value to_value(py::handle o) { return to_value_at(o, ""); }

py::object from_value(const value& v) {
  switch (v.kind()) {
    case value::type::null: return py::none();
    case value::type::boolean: return py::bool_(v.as_bool());
    case value::type::integer: return py::int_(v.as_int());
    case value::type::floating: return py::float_(v.as_float());
    case value::type::string: {
      const auto& s = v.as_string();
      PyObject* u = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogateescape");
      if (u == nullptr) throw py::error_already_set();
      return py::reinterpret_steal<py::object>(u);
    }
    case value::type::bytes: {
      const auto& b = v.as_bytes();
      return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
    }
    case value::type::list: {
      const auto& l = v.as_list();
      py::list out(l.size());
      for (std::size_t i = 0; i < l.size(); ++i) out[i] = from_value(l[i]);
      return out;
    }
    case value::type::map: {
      py::dict out;
      for (const auto& [k, x] : v.as_map()) out[py::str(k)] = from_value(x);
      return out;
    }
    case value::type::tensor: return tensor_to_numpy(v.as_tensor());
  }
  return py::none();
}

graph::config to_config(py::handle o, const graph::location& where) {
  PyObject* p = o.ptr();
  graph::config c;
  if (p == Py_None) c = graph::config{};
  else if (PyBool_Check(p)) c = graph::config(p == Py_True);
  else if (PyLong_Check(p)) c = graph::config(o.cast<std::int64_t>());
  else if (PyFloat_Check(p)) c = graph::config(PyFloat_AS_DOUBLE(p));
  else if (PyUnicode_Check(p)) c = graph::config(o.cast<std::string>());
  else if (PyList_Check(p) || PyTuple_Check(p)) {
    graph::config_list l;
    for (auto item : py::reinterpret_borrow<py::sequence>(o)) l.push_back(to_config(item, where));
    c = graph::config(std::move(l));
  } else if (PyDict_Check(p)) {
    graph::config_map m;
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(o)) {
      if (!PyUnicode_Check(k.ptr())) throw py::type_error("a param's dict keys must be str");
      m.emplace_back(k.cast<std::string>(), to_config(v, where));
    }
    c = graph::config(std::move(m));
  } else {
    throw py::type_error(std::string("a param of type ") + Py_TYPE(p)->tp_name +
                         ": params are None, bool, int, float, str, list or dict");
  }
  return std::move(c).at(where);
}

py::object from_config(const graph::config& c) {
  switch (c.kind()) {
    case graph::config::type::null: return py::none();
    case graph::config::type::boolean: return py::bool_(c.as_bool());
    case graph::config::type::integer: return py::int_(c.as_int());
    case graph::config::type::floating: return py::float_(c.as_float());
    case graph::config::type::string: return py::str(c.as_string());
    case graph::config::type::list: {
      py::list out;
      for (const auto& x : c.as_list()) out.append(from_config(x));
      return out;
    }
    case graph::config::type::map: {
      py::dict out;
      for (const auto& [k, x] : c.as_map()) out[py::str(k)] = from_config(x);
      return out;
    }
  }
  return py::none();
}

}  // namespace loom::python
