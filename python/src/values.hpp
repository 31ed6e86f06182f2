// python/src/values.hpp: loom values and graph configs as Python objects and back (the binding's only
// conversions). None/bool/int/float/str/bytes/list/tuple/dict map to the value types of the same name; a
// loom tensor becomes a read-only NumPy array over loom's own buffer (no copy), and an object with the
// buffer protocol (a NumPy array) becomes a tensor. Every function here needs the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include "loom/graph/config.hpp"
#include "loom/runtime/value.hpp"

namespace loom::python {

namespace py = pybind11;

// Throws py::type_error naming the Python type (and the path inside a list or dict) that has no loom type.
value to_value(py::handle o);
py::object from_value(const value& v);

// A param as the graph holds it, each part located at `where` (the Python call that wrote it).
graph::config to_config(py::handle o, const graph::location& where);
py::object from_config(const graph::config& c);

}  // namespace loom::python
