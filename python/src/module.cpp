// python/src/module.cpp: the extension module `loom._loom`: the runtime (py_runtime: load, validate, run,
// start, serve, a worker) and every pybind11 binding. The objects it hands out are in handles.hpp (graph.cpp,
// runs.cpp), reports and exceptions in reports.cpp, the waits without the GIL in gil.hpp; values.cpp and
// kinds.cpp convert and call back. The Pythonic API (loom.Graph, loom.run, @loom.kind) is the pure-Python
// package loom/ on top of it; the names here are its building blocks, not meant for direct use.
//
// The GIL: every call that may wait (a run, a push, a take, a server's stop) releases it, and polls for
// signals (Ctrl-C: KeyboardInterrupt) every 100 ms on the calling thread, stopping its run before it raises.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gil.hpp"
#include "handles.hpp"
#include "kinds.hpp"
#include "loom/embed/runtime.hpp"
#include "loom/graph/emit.hpp"
#include "loom/runtime/cluster/worker.hpp"
#include "loom/runtime/schema.hpp"
#include "loom/runtime/transport/keys.hpp"
#include "loom/version.hpp"
#include "reports.hpp"
#include "values.hpp"

namespace py = pybind11;
using namespace std::chrono_literals;

namespace loom::python {

namespace {


std::vector<std::string> uses_program_io(const graph::graph& g) {
  std::vector<std::string> out;
  for (const auto& n : g.nodes)
    if (n.kind == "program.input" || n.kind == "program.output") out.push_back(n.name);
  return out;
}

// The kinds of `rt` a cluster shares: all but program.input/output (they live only in an embedding process).
registry shared_kinds(const registry& all) {
  registry out;
  for (const auto& name : all.kind_names())
    if (name != "program.input" && name != "program.output") out.add(*all.find(name));
  return out;
}

struct py_runtime {
  std::unique_ptr<runtime> rt;

  explicit py_runtime(unsigned threads, bool builtins, std::vector<std::string> plugins, std::string log_level) {
    runtime_options o;
    o.threads = threads;
    o.builtins = builtins;
    o.plugins = std::move(plugins);
    o.log_level = std::move(log_level);
    rt = std::make_unique<runtime>(std::move(o));
  }
  ~py_runtime() { drop_without_gil(rt); }

  void add_kind(const py::dict& spec, py::object make) { rt->kinds().replace(python_kind(spec, std::move(make))); }
  std::vector<std::string> kind_names() const { return rt->kinds().kind_names(); }

  py_graph load(const std::string& path, const std::vector<std::string>& set) {
    safe_release nogil;
    return py_graph{rt->load(path, set)};
  }
  py_graph load_text(const std::string& yaml, const std::string& name, const std::vector<std::string>& set) {
    safe_release nogil;
    return py_graph{rt->load_text(yaml, name, set)};
  }
  py::list validate(const py_graph& g) { return diagnostics_list(rt->validate(g.g)); }

  // `progress`: a Python callable given the report so far (a dict) every `every` seconds, on a thread of
  // the run's; what it raises is reported as unraisable (it does not stop the run).
  static run_options options(const std::vector<std::string>& set, py::object progress = py::none(), double every = 0.5) {
    run_options o;
    o.set = set;
    if (!progress.is_none()) {
      auto cb = std::make_shared<held_object>(std::move(progress));
      o.on_progress = [cb](const run_report& r) {
        try {
          node_gil gil;
          try {
            cb->get()(report_dict(r));
          } catch (py::error_already_set& e) {
            e.discard_as_unraisable("loom: a run's progress callback");
          }
        } catch (const std::exception&) {
          // the interpreter is finalizing: no more progress
        }
      };
      o.progress_every = std::chrono::milliseconds(static_cast<std::int64_t>(every * 1000));
    }
    return o;
  }

  py::dict run(const py_graph& g, const std::vector<std::string>& set, py::object progress, double every) {
    if (auto io = uses_program_io(g.g); !io.empty())
      throw graph_error("graph `" + g.g.name + "` has program.input/program.output node `" + io.front() +
                            "`: run it with loom.start()",
                        {});
    auto ro = options(set, std::move(progress), every);
    std::unique_ptr<running> run;
    {
      safe_release nogil;
      run = std::make_unique<running>(rt->start(g.g, ro));
    }
    try {
      wait_with_signals([&](std::chrono::milliseconds ms) { return run->wait_for(ms) != nullptr; },
                        [&] { run->stop(); });
    } catch (...) {
      drop_without_gil(run);
      throw;
    }
    py::dict d = report_dict(run->wait());
    drop_without_gil(run);
    return d;
  }

  std::unique_ptr<py_running> start(const py_graph& g, const std::vector<std::string>& set, py::object progress,
                                    double every) {
    auto ro = options(set, std::move(progress), every);
    auto out = std::make_unique<py_running>();
    safe_release nogil;
    out->r = std::make_unique<running>(rt->start(g.g, ro));
    return out;
  }

  py::dict run_cluster(const py_graph& g, const std::string& cluster, bool insecure, double connect_timeout_s,
                       const std::vector<std::string>& set, py::object progress, double every,
                       const std::vector<std::string>& slurm_worker_command) {
    cluster_options co;
    co.cluster = cluster;
    co.slurm_worker_command = slurm_worker_command;
    co.insecure = insecure;
    co.connect_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(connect_timeout_s * 1000));
    auto ro = options(set, std::move(progress), every);
    std::packaged_task<run_report()> task([this, graph = g.g, co, ro]() mutable {
      return rt->run_cluster(std::move(graph), co, ro);
    });
    auto result = task.get_future();
    std::thread worker(std::move(task));
    try {
      wait_with_signals([&](std::chrono::milliseconds ms) { return result.wait_for(ms) == std::future_status::ready; },
                        [&] { rt->interrupt(); });
    } catch (...) {
      safe_release nogil;
      worker.join();
      throw;
    }
    {
      safe_release nogil;
      worker.join();
    }
    return report_dict(result.get());  // rethrows the run's graph_error
  }

  std::unique_ptr<py_server> serve(const py_graph& g, const std::string& host, int port, const std::string& input,
                                   const std::string& output, std::size_t max_concurrent,
                                   std::optional<std::string> api_key) {
    serve_options so;
    so.host = host;
    so.port = port;
    so.input = input;
    so.output = output;
    so.max_concurrent = max_concurrent;
    so.api_key = std::move(api_key);
    auto out = std::make_unique<py_server>();
    safe_release nogil;
    out->s = std::make_unique<server>(rt->serve(g.g, so));
    return out;
  }

  void interrupt() { rt->interrupt(); }

  // key: the prefix of this worker's CurveZMQ key pair (PREFIX.key / PREFIX.pub, `loom keygen`); empty and
  // not insecure: the user's own pair, as `loom worker` without key options.
  std::unique_ptr<py_worker> worker(const std::string& listen, const std::string& name, bool insecure, bool once,
                                    const std::string& key) {
    auto w = std::make_unique<py_worker>();
    w->kinds = shared_kinds(rt->kinds());
    cluster::worker_options o;
    o.listen = listen;
    o.name = name;
    o.insecure = insecure;
    o.once = once;
    if (!key.empty()) o.curve = transport::load_keypair(transport::keypair_prefix(key));
    o.kinds = &w->kinds;
    auto* p = w.get();
    o.stopping = [p] { return p->stopping.load(); };
    o.on_listening = [p](const std::string& a) {
      std::lock_guard lock(p->m);
      p->address = a;
      p->changed.notify_all();
    };
    auto who = name.empty() ? listen : name;
    o.log = [who](const std::string& line) { std::fprintf(stderr, "loom worker %s: %s\n", who.c_str(), line.c_str()); };
    w->thread = std::thread([p, o] {
      int rc = 2;
      try {
        rc = cluster::run_worker(o);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "loom worker: %s\n", e.what());
      }
      std::lock_guard lock(p->m);
      p->rc = rc;
      p->ended = true;
      p->changed.notify_all();
    });
    return w;
  }

  std::string tool_schema(const std::string& kind, const std::string& node) const {
    const auto* def = rt->kinds().find(kind);
    if (def == nullptr) throw py::value_error("unknown kind `" + kind + "`");
    if (!def->spec.call) throw py::value_error("kind `" + kind + "` is not a tool");
    return loom::tool_schema(node, *def->spec.call).dump();
  }
};

}  // namespace

}  // namespace loom::python

PYBIND11_MODULE(_loom, m) {
  using namespace loom::python;
  m.doc() = "loom's native core (the package `loom` wraps it: use that)";
  m.attr("version") = loom::version();
  m.def("_exiting", &mark_exiting, "Called last by the package's exit hook (loom._stop_all_runs).");

  graph_error_type = PyErr_NewExceptionWithDoc(
      "loom._loom.GraphError", "A graph that does not load or validate: .diagnostics lists each mistake with its place.",
      PyExc_ValueError, nullptr);
  run_error_type = PyErr_NewExceptionWithDoc("loom._loom.RunError",
                                             "A run that failed or was stopped: .report is the run's report.",
                                             PyExc_RuntimeError, nullptr);
  m.attr("GraphError") = py::reinterpret_borrow<py::object>(graph_error_type);
  m.attr("RunError") = py::reinterpret_borrow<py::object>(run_error_type);
  py::register_exception_translator(&translate);

  auto to = py::class_<to_port>(m, "To", "A value a kind sends to one of its output ports: `yield loom.To(\"errors\", x)`.")
      .def(py::init([](py::object port, py::object value) { return to_port{std::move(port), std::move(value)}; }),
           py::arg("port"), py::arg("value"))
      .def_readonly("port", &to_port::port)
      .def_readonly("value", &to_port::value)
      .def("__repr__", [](const to_port& t) {
        return "loom.To(" + py::repr(t.port).cast<std::string>() + ", " + py::repr(t.value).cast<std::string>() + ")";
      });
  set_to_port_type(to);

  py::class_<py_graph>(m, "GraphData", "A graph as loom holds it (loom.Graph wraps it).")
      .def(py::init([](const std::string& name, const std::string& file, int line) {
             py_graph g;
             g.g.name = name;
             g.g.where = location_of(file, line, 0);
             return g;
           }),
           py::arg("name"), py::arg("file"), py::arg("line"))
      .def_property_readonly("name", [](const py_graph& g) { return g.g.name; })
      .def_property("description", [](const py_graph& g) { return g.g.description; },
                    [](py_graph& g, std::string d) { g.g.description = std::move(d); })
      .def_property("default_capacity", [](const py_graph& g) { return g.g.default_capacity; },
                    [](py_graph& g, std::int64_t c) { g.g.default_capacity = c; })
      .def_property("base_dir", [](const py_graph& g) { return g.g.base_dir; },
                    [](py_graph& g, std::string d) { g.g.base_dir = std::move(d); })
      .def("add_node", &py_graph::add_node, py::arg("name"), py::arg("kind"), py::arg("params"), py::arg("file"),
           py::arg("line"), py::arg("replicas") = py::none(), py::arg("restarts") = py::none(),
           py::arg("tools") = std::vector<std::string>{}, py::arg("on_host") = py::none(), py::arg("cpus") = py::none(),
           py::arg("gpus") = py::none())
      .def("add_edge", &py_graph::add_edge, py::arg("src"), py::arg("dst"), py::arg("capacity"), py::arg("file"),
           py::arg("line"))
      .def("nodes", &py_graph::nodes)
      .def("edges", &py_graph::edges)
      .def("has_node", [](const py_graph& g, const std::string& n) { return g.g.find(n) != nullptr; })
      .def("to_yaml", [](const py_graph& g) { return loom::graph::to_yaml(g.g); })
      .def("copy", [](const py_graph& g) { return py_graph{g.g}; })
      .def("__eq__", [](const py_graph& a, const py_graph& b) { return a.g == b.g; });

  py::class_<py_running>(m, "Running", "A started run (loom.Run wraps it).")
      .def("push", &py_running::push, py::arg("node"), py::arg("value"), py::arg("timeout") = py::none())
      .def("try_push", &py_running::try_push, py::arg("node"), py::arg("value"))
      .def("close", &py_running::close, py::arg("node"))
      .def("take", &py_running::take, py::arg("node"), py::arg("timeout") = py::none())
      .def("wait", &py_running::wait, py::arg("timeout") = py::none())
      .def("done", &py_running::done)
      .def("stop", &py_running::stop)
      .def("release", &py_running::release);

  py::class_<py_server>(m, "Server", "A graph served over HTTP (loom.Server wraps it).")
      .def_property_readonly("port", &py_server::port)
      .def("stop", &py_server::stop);

  py::class_<py_worker>(m, "Worker", "A loom worker in this process (loom.Worker wraps it).")
      .def("address", &py_worker::bound, py::arg("timeout") = 30.0)
      .def("wait", &py_worker::wait, py::arg("timeout") = py::none())
      .def("stop", [](py_worker& w) { w.stopping = true; });

  py::class_<py_runtime>(m, "Runtime", "loom::runtime: the actor system, its threads and the kinds.")
      .def(py::init<unsigned, bool, std::vector<std::string>, std::string>(), py::arg("threads") = 0,
           py::arg("builtins") = true, py::arg("plugins") = std::vector<std::string>{}, py::arg("log_level") = "warn")
      .def("add_kind", &py_runtime::add_kind, py::arg("spec"), py::arg("make"))
      .def("kind_names", &py_runtime::kind_names)
      .def("load", &py_runtime::load, py::arg("path"), py::arg("set"))
      .def("load_text", &py_runtime::load_text, py::arg("yaml"), py::arg("name"), py::arg("set"))
      .def("validate", &py_runtime::validate, py::arg("graph"))
      .def("run", &py_runtime::run, py::arg("graph"), py::arg("set"), py::arg("progress") = py::none(),
           py::arg("every") = 0.5)
      .def("start", &py_runtime::start, py::arg("graph"), py::arg("set"), py::arg("progress") = py::none(),
           py::arg("every") = 0.5)
      .def("run_cluster", &py_runtime::run_cluster, py::arg("graph"), py::arg("cluster"), py::arg("insecure"),
           py::arg("connect_timeout"), py::arg("set"), py::arg("progress") = py::none(), py::arg("every") = 0.5,
           py::arg("slurm_worker_command") = std::vector<std::string>{})
      .def("serve", &py_runtime::serve, py::arg("graph"), py::arg("host"), py::arg("port"), py::arg("input"),
           py::arg("output"), py::arg("max_concurrent"), py::arg("api_key"))
      .def("interrupt", &py_runtime::interrupt)
      .def("worker", &py_runtime::worker, py::arg("listen"), py::arg("name"), py::arg("insecure"), py::arg("once"),
           py::arg("key") = std::string())
      .def("tool_schema", &py_runtime::tool_schema, py::arg("kind"), py::arg("node"));
}
