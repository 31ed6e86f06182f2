// python/src/reports.hpp: what loom says about a run or a graph, as Python sees it: a run's report as a dict,
// a graph's diagnostics as a list of dicts, and loom's exceptions as Python's (GraphError with .diagnostics,
// RunError with .report, TimeoutError). Defined in reports.cpp; the module (module.cpp) makes the two
// exception types and registers translate().
#pragma once

#include <pybind11/pybind11.h>

#include <exception>

#include "loom/embed/runtime.hpp"

namespace loom::python {

namespace py = pybind11;

// loom._loom.GraphError and loom._loom.RunError, made when the module is imported.
extern PyObject* graph_error_type;
extern PyObject* run_error_type;

py::dict report_dict(const run_report& r);
py::list diagnostics_list(const graph::diagnostics& diags);

// pybind11's exception translator: graph_error, run_error and timeout_error as the Python exceptions above.
void translate(std::exception_ptr p);

}  // namespace loom::python
