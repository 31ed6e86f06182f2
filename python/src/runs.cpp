// python/src/runs.cpp: the handles on what a runtime started (handles.hpp): a run (push, take, wait, stop:
// each wait in slices with the GIL released, looking for signals between them), a served graph, and a
// `loom worker` on a thread of this process.
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "handles.hpp"
#include "reports.hpp"
#include "values.hpp"

namespace loom::python {

running& py_running::get() {
  if (!r) throw std::logic_error("this run was released");
  return *r;
}

bool py_running::push(const std::string& node, py::handle v, std::optional<double> timeout_s) {
  auto port = get().input_port_of(node);
  value x = to_value(v);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout_s) deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(*timeout_s));
  for (;;) {
    auto step = std::chrono::duration_cast<std::chrono::milliseconds>(slice);
    if (deadline) step = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now()), 0ms, step);
    bool ok;
    {
      safe_release nogil;
      ok = port.push(x, step);
    }
    if (ok) return true;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

py::tuple py_running::take(const std::string& node, std::optional<double> timeout_s) {
  auto port = get().output_port_of(node);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout_s) deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(*timeout_s));
  for (;;) {
    auto step = std::chrono::duration_cast<std::chrono::milliseconds>(slice);
    if (deadline) step = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now()), 0ms, step);
    std::optional<value> got;
    bool timed_out = false;
    {
      safe_release nogil;
      try {
        got = port.take(step);
      } catch (const timeout_error&) {
        timed_out = true;
      }
    }
    if (!timed_out) {
      if (!got) return py::make_tuple(false, py::none());
      return py::make_tuple(true, from_value(*got));
    }
    if (deadline && std::chrono::steady_clock::now() >= *deadline)
      throw timeout_error("program.output `" + node + "`: no value within " + std::to_string(*timeout_s) + " s");
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

py::object py_running::wait(std::optional<double> timeout_s) {
  auto& run = get();
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout_s) deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(*timeout_s));
  wait_with_signals([&](std::chrono::milliseconds ms) { return run.wait_for(ms) != nullptr; }, [&] { run.stop(); },
                    deadline);
  const run_report* rep = run.wait_for(0ms);
  if (rep == nullptr) return py::none();
  return report_dict(*rep);
}

int py_server::port() const {
  if (!s) throw std::logic_error("this server was stopped");
  return s->port();
}

py_worker::~py_worker() {
  stopping = true;
  if (!thread.joinable()) return;
  if (!interpreter_alive()) {
    thread.detach();
    return;
  }
  safe_release nogil;
  thread.join();
}

std::string py_worker::bound(double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_s));
  wait_with_signals([&](std::chrono::milliseconds ms) {
    std::unique_lock lock(m);
    return changed.wait_for(lock, ms, [&] { return !address.empty() || ended; });
  }, [&] { stopping = true; }, deadline);
  std::lock_guard lock(m);
  if (!address.empty()) return address;
  if (ended) throw std::runtime_error("the worker ended without listening (exit status " + std::to_string(rc) + ")");
  throw timeout_error("the worker is not listening after " + std::to_string(timeout_s) + " s");
}

py::object py_worker::wait(std::optional<double> timeout_s) {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout_s) deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(*timeout_s));
  wait_with_signals([&](std::chrono::milliseconds ms) {
    std::unique_lock lock(m);
    return changed.wait_for(lock, ms, [&] { return ended; });
  }, [&] { stopping = true; }, deadline);
  std::lock_guard lock(m);
  return ended ? py::object(py::int_(rc)) : py::object(py::none());
}

}  // namespace loom::python
