// python/src/reports.cpp: a run's report and a graph's diagnostics as Python dicts, and loom's exceptions
// translated into Python's (reports.hpp says what each is).
#include "reports.hpp"

#include <pybind11/stl.h>

namespace loom::python {

PyObject* graph_error_type = nullptr;
PyObject* run_error_type = nullptr;

namespace {

const char* outcome_name(run_report::outcome o) {
  switch (o) {
    case run_report::outcome::ok: return "ok";
    case run_report::outcome::failed: return "failed";
    case run_report::outcome::interrupted: return "interrupted";
    case run_report::outcome::paused: return "paused";
  }
  return "?";
}

}  // namespace

py::dict report_dict(const run_report& r) {
  py::dict d;
  d["result"] = outcome_name(r.result);
  d["error"] = r.error;
  d["seconds"] = r.seconds;
  py::list nodes;
  for (const auto& n : r.nodes) {
    py::dict x;
    x["node"] = n.node;
    x["kind"] = n.kind;
    x["instance"] = n.instance;
    x["replicas"] = n.replicas;
    x["in"] = n.in;
    x["out"] = n.out;
    x["busy_ns"] = n.busy_ns;
    x["queue_hwm"] = n.queue_hwm;
    x["restarts"] = n.restarts;
    x["dropped"] = n.dropped;
    x["late"] = n.late;
    x["rejected"] = n.rejected;
    nodes.append(x);
  }
  d["nodes"] = nodes;
  py::list edges;
  for (const auto& e : r.edges) {
    py::dict x;
    x["from"] = e.from;
    x["from_node"] = e.from_node;
    x["to"] = e.to;
    x["label"] = e.label;
    x["blocked_ns"] = e.blocked_ns;
    edges.append(x);
  }
  d["edges"] = edges;
  d["moved"] = r.moved;
  d["table"] = r.table();
  return d;
}

py::list diagnostics_list(const graph::diagnostics& diags) {
  py::list out;
  for (const auto& d : diags.all()) {
    py::dict x;
    x["level"] = d.level == graph::diagnostic::severity::error ? "error" : "warning";
    x["file"] = d.where.file ? py::object(py::str(*d.where.file)) : py::object(py::none());
    x["line"] = d.where.line;
    x["column"] = d.where.column;
    x["message"] = d.message;
    x["hint"] = d.hint;
    x["text"] = d.str();
    out.append(x);
  }
  return out;
}

void translate(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const graph_error& e) {
    py::object exc = py::reinterpret_borrow<py::object>(graph_error_type)(e.what());
    exc.attr("diagnostics") = diagnostics_list(e.diagnostics());
    PyErr_SetObject(graph_error_type, exc.ptr());
  } catch (const run_error& e) {
    py::object exc = py::reinterpret_borrow<py::object>(run_error_type)(e.what());
    exc.attr("report") = e.report() ? py::object(report_dict(*e.report())) : py::object(py::none());
    PyErr_SetObject(run_error_type, exc.ptr());
  } catch (const timeout_error& e) {
    PyErr_SetString(PyExc_TimeoutError, e.what());
  }
}

}  // namespace loom::python
