// python/src/handles.hpp: the objects loom._loom hands to Python besides the runtime (module.cpp binds them):
// py_graph (GraphData: a graph built from Python call sites, or loaded; graph.cpp), and the handles on what a
// runtime started: py_running (Running: push, take, wait, stop), py_server (Server) and py_worker (Worker: a
// `loom worker` on a thread of this process), in runs.cpp. Their waits release the GIL (gil.hpp).
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gil.hpp"
#include "loom/embed/runtime.hpp"
#include "values.hpp"

namespace loom::python {

// A place in a Python file, as graph diagnostics name it (graph.cpp).
graph::location location_of(const std::string& file, int line, int column);

// -- graphs ----------------------------------------------------------------------------------------------

// A graph being built from Python, or loaded: graph::graph plus the builder verbs with Python call sites.
struct py_graph {
  graph::graph g;

  void add_node(const std::string& name, const std::string& kind, const py::dict& params, const std::string& file,
                int line, std::optional<int> replicas, std::optional<int> restarts,
                const std::vector<std::string>& tools, std::optional<std::string> on_host, std::optional<double> cpus,
                std::optional<int> gpus);
  void add_edge(const std::string& from, const std::string& to, std::optional<std::int64_t> capacity,
                const std::string& file, int line);
  py::list nodes() const;
  py::list edges() const;
};

// -- running graphs ----------------------------------------------------------------------------------------

// A started run (Running; loom.Run wraps it). Dropping it releases the GIL: its threads may be waiting for it.
struct py_running {
  std::unique_ptr<running> r;
  ~py_running() { drop_without_gil(r); }

  running& get();
  bool push(const std::string& node, py::handle v, std::optional<double> timeout_s);

  bool try_push(const std::string& node, py::handle v) { return get().input_port_of(node).try_push(to_value(v)); }
  void close(const std::string& node) { get().input_port_of(node).close(); }

  // (True, value), or (False, None) once the run has ended ok and `node` is empty. Raises TimeoutError at
  // the deadline, RunError when the run failed or stopped.
  py::tuple take(const std::string& node, std::optional<double> timeout_s);
  py::object wait(std::optional<double> timeout_s);

  bool done() { return get().done(); }
  void stop() { get().stop(); }
  void release() { drop_without_gil(r); }
};

// A graph served over HTTP (Server; loom.Server wraps it).
struct py_server {
  std::unique_ptr<server> s;
  ~py_server() { drop_without_gil(s); }
  int port() const;
  void stop() { drop_without_gil(s); }
};

// A `loom worker` in this process (cluster::run_worker on a thread of its own), with this process's kinds:
// the Python kinds too, so that a driver can place them here.
struct py_worker {
  registry kinds;
  std::atomic<bool> stopping{false};
  std::mutex m;
  std::condition_variable changed;
  std::string address;
  bool ended = false;
  int rc = 0;
  std::thread thread;

  ~py_worker();
  std::string bound(double timeout_s);
  py::object wait(std::optional<double> timeout_s);
};

}  // namespace loom::python
