// python/src/kinds.hpp: kinds written in Python. A kind's spec comes from the Python side (loom/_kinds.py
// reads it off the decorated function's signature) as a dict; its factory calls back into Python for each
// node instance. Python kinds block (each instance has a thread of its own, kind_spec::blocking) and take
// the GIL only while Python code runs, so the runtime's scheduler threads never wait for it.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "loom/runtime/registry.hpp"

namespace loom::python {

namespace py = pybind11;

// An object that may be dropped on any thread: it takes the GIL to let go of its reference (or leaks it when
// the interpreter is finalizing, when no thread may take the GIL any more).
class held_object {
 public:
  explicit held_object(py::object o) : o_(std::move(o)) {}
  held_object(const held_object&) = delete;
  held_object& operator=(const held_object&) = delete;
  ~held_object();
  const py::object& get() const { return o_; }

 private:
  py::object o_;
};

// True while Python code may still run (not finalizing).
bool interpreter_alive();
// The package's exit hook has stopped every run (loom._loom._exiting()): from now on a thread that ends
// leaves its Python thread state behind instead of taking the GIL to delete it (finalization may begin at
// any moment, and CPython ends a thread that takes the GIL then, inside loom's frames: an abort).
void mark_exiting();
bool exiting();

// Makes this thread's Python thread state once and keeps it until the thread ends (pybind11's
// gil_scoped_acquire, on a thread Python did not start, makes and deletes one per acquisition). Throws
// std::runtime_error once the interpreter is finalizing.
struct keep_thread_state {
  keep_thread_state();
};

// The GIL, from one of the runtime's threads (a node's, a run's): its thread state kept.
struct node_gil : keep_thread_state {
  py::gil_scoped_acquire acquire;
};

// The kind described by `spec` (see loom/_kinds.py: name, doc, inputs, outputs, params, stateful, call),
// whose instances the Python callable `make(params, instance, replicas, attempt, restored)` builds.
kind_def python_kind(const py::dict& spec, py::object make);

// The text of the Python exception `e`, with its traceback ("Traceback (most recent call last): ...").
std::string traceback_text(py::error_already_set& e);

// The value a Python kind returns or yields to go to a port other than its first one (loom.To).
struct to_port {
  py::object port;  // the output port's name (str) or index (int)
  py::object value;
};
// The Python type bound to to_port (module.cpp sets it once): a result's type is compared with it directly,
// which is cheaper per value than py::isinstance's lookup of the registered type.
void set_to_port_type(py::handle type);

}  // namespace loom::python
