// python/src/kinds.cpp: see kinds.hpp.
#include "kinds.hpp"

#include <atomic>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/runtime/schema.hpp"
#include "values.hpp"

namespace loom::python {

namespace {

graph::param_type param_type_of(const std::string& t) {
  using graph::param_type;
  if (t == "boolean") return param_type::boolean;
  if (t == "integer") return param_type::integer;
  if (t == "floating") return param_type::floating;
  if (t == "string") return param_type::string;
  if (t == "list") return param_type::list;
  if (t == "map") return param_type::map;
  if (t == "any") return param_type::any;
  throw py::value_error("unknown param type `" + t + "`");
}

std::vector<graph::param_spec> params_of(const py::list& list) {
  std::vector<graph::param_spec> out;
  for (auto item : list) {
    auto d = item.cast<py::dict>();
    auto p = graph::param_spec::of(param_type_of(d["type"].cast<std::string>()), d["name"].cast<std::string>(),
                                   d.contains("doc") ? d["doc"].cast<std::string>() : std::string());
    if (d.contains("default")) p.default_value = to_config(d["default"], {});
    if (d.contains("required")) p.required = d["required"].cast<bool>();
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<graph::port_spec> ports_of(const py::list& list) {
  std::vector<graph::port_spec> out;
  for (auto item : list) {
    auto t = item.cast<py::tuple>();
    graph::port_spec p;
    p.name = t[0].cast<std::string>();
    p.doc = t[1].cast<std::string>();
    out.push_back(std::move(p));
  }
  return out;
}

std::string exception_only_text(py::error_already_set& e) {
  py::list lines = py::module_::import("traceback").attr("format_exception_only")(e.type(), e.value());
  std::string text;
  for (auto l : lines) text += l.cast<std::string>();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// This thread's Python thread state, made once and kept until the thread ends. pybind11's
// gil_scoped_acquire, on a thread Python did not start, makes a thread state and deletes it again on every
// acquisition (most of the cost of a call: bench/python_bench.py); with a state kept here it only takes and
// gives back the GIL.
struct thread_state_keeper {
  PyGILState_STATE state{};
  PyThreadState* saved = nullptr;
  thread_state_keeper() {
    if (PyGILState_Check()) return;  // a thread that holds the GIL already (a Python thread): nothing to keep
    state = PyGILState_Ensure();
    saved = PyEval_SaveThread();
  }
  ~thread_state_keeper() {
    if (saved == nullptr || exiting() || !interpreter_alive()) return;  // at exit: leaked, no thread may take the GIL
    PyEval_RestoreThread(saved);
    PyGILState_Release(state);
  }
};

PyObject* to_port_type = nullptr;

struct kind_info {
  std::string name;
  std::vector<std::string> outputs;
  std::optional<graph::call_spec> call;
};

// One instance of a Python kind: the handler object its `make` returned, and what it offers.
class python_node final : public node {
 public:
  python_node(std::shared_ptr<const kind_info> kind, py::object handler) : kind_(std::move(kind)) {
    auto attr = [&](const char* name) -> py::object {
      py::object a = py::getattr(handler, name, py::none());
      return a.is_none() ? py::object() : a;
    };
    call_ = std::make_unique<held_object>(attr("call"));
    pull_ = std::make_unique<held_object>(attr("pull"));
    finish_ = std::make_unique<held_object>(attr("finish"));
    checkpoint_ = std::make_unique<held_object>(attr("checkpoint"));
    tool_ = std::make_unique<held_object>(attr("tool"));
    multi_ = py::getattr(handler, "multi", py::bool_(false)).cast<bool>();
    handler_ = std::make_unique<held_object>(std::move(handler));
  }

  bool handles_runs() const override { return true; }

  void on_run(context& ctx, std::size_t port, std::span<const value> values) override {
    if (!call_->get()) return;
    {
      node_gil gil;
      call_python(ctx, port, values);
    }
    flush(ctx);  // without the GIL
  }

  void call_python(context& ctx, std::size_t port, std::span<const value> values) {
    try {
      PyObject* fn = call_->get().ptr();
      for (const auto& v : values) {
        if (ctx.stopping()) break;  // a run holds up to 4096 values: a stop is seen between them
        py::object arg = from_value(v);
        PyObject* r;
        if (multi_) {
          py::int_ p(port);
          r = PyObject_CallFunctionObjArgs(fn, p.ptr(), arg.ptr(), nullptr);
        } else {
          r = PyObject_CallOneArg(fn, arg.ptr());
        }
        if (r == nullptr) throw py::error_already_set();
        emit_result(ctx, py::reinterpret_steal<py::object>(r));
      }
      flush(ctx);  // the values before the checkpoint belong to it
      save_checkpoint(ctx);
    } catch (...) {
      failed();
    }
  }

  void on_message(context& ctx, std::size_t port, const value& v) override { on_run(ctx, port, {&v, 1}); }

  bool on_pull(context& ctx) override {
    if (!pull_->get()) return false;
    bool more = pull_python(ctx);
    flush(ctx);
    return more;
  }

  bool pull_python(context& ctx) {
    node_gil gil;
    try {
      std::size_t n = ctx.budget();
      for (std::size_t i = 0; i < n; ++i) {
        PyObject* r = PyIter_Next(pull_->get().ptr());
        if (r == nullptr) {
          if (PyErr_Occurred()) throw py::error_already_set();
          flush(ctx);
          save_checkpoint(ctx);
          return false;
        }
        emit_one(ctx, py::reinterpret_steal<py::object>(r));
      }
      flush(ctx);
      save_checkpoint(ctx);
    } catch (...) {
      failed();
    }
    return !ctx.stopping();
  }

  void on_finish(context& ctx) override {
    if (!finish_->get()) return;
    {
      node_gil gil;
      try {
        emit_result(ctx, finish_->get()());
      } catch (...) {
        failed();
      }
    }
    flush(ctx);
  }

  value on_call(context&, const value& request) override {
    if (!tool_->get() || !kind_->call) throw std::logic_error(kind_->name + " is not a tool");
    value checked = check_call_request(*kind_->call, request);
    node_gil gil;
    try {
      py::dict kwargs;
      if (checked.is_map())
        for (const auto& [k, v] : checked.as_map()) kwargs[py::str(k)] = from_value(v);
      py::object r = tool_->get()(**kwargs);
      return to_value(r);
    } catch (py::error_already_set& e) {
      throw std::runtime_error(exception_only_text(e));
    }
  }

 private:
  // Inside a catch: drops the values held for emission (the attempt failed) and rethrows, a Python
  // exception as a runtime_error carrying its traceback.
  [[noreturn]] void failed() {
    first_.clear();
    try {
      throw;
    } catch (py::error_already_set& e) {
      throw std::runtime_error(traceback_text(e));
    }
  }

  void save_checkpoint(context& ctx) {
    if (checkpoint_->get()) ctx.checkpoint(to_value(checkpoint_->get()()));
  }

  std::size_t port_index(const py::object& port) const {
    if (PyLong_Check(port.ptr())) {
      auto i = port.cast<std::int64_t>();
      if (i < 0 || static_cast<std::size_t>(i) >= kind_->outputs.size())
        throw std::runtime_error("loom.To(" + std::to_string(i) + ", ...): " + kind_->name + " has " +
                                 std::to_string(kind_->outputs.size()) + " output ports");
      return static_cast<std::size_t>(i);
    }
    auto name = port.cast<std::string>();
    for (std::size_t i = 0; i < kind_->outputs.size(); ++i)
      if (kind_->outputs[i] == name) return i;
    throw std::runtime_error("loom.To(\"" + name + "\", ...): " + kind_->name + " has no output port `" + name + "`");
  }

  // One value (or a loom.To) to emit. Values for the first port gather in first_ and leave as one run
  // (context::emit_run), after the GIL is let go; a value for another port sends them first (order).
  void emit_one(context& ctx, const py::object& r) {
    if (Py_TYPE(r.ptr()) == reinterpret_cast<PyTypeObject*>(to_port_type)) {
      const auto& t = r.cast<const to_port&>();
      auto port = port_index(t.port);
      value v = to_value(t.value);
      if (port == 0) {
        first_.push_back(std::move(v));
        return;
      }
      flush(ctx);
      ctx.emit(port, std::move(v));
      return;
    }
    if (kind_->outputs.empty())
      throw std::runtime_error(kind_->name + " has no output ports, but its function returned a " +
                               std::string(Py_TYPE(r.ptr())->tp_name) + " (return None)");
    first_.push_back(to_value(r));
  }

  void flush(context& ctx) {
    if (first_.empty()) return;
    ctx.emit_run(0, first_);
    first_.clear();
  }

  // What a call returned: None emits nothing, a generator each value it yields, anything else one value.
  void emit_result(context& ctx, const py::object& r) {
    if (r.is_none()) return;
    if (PyGen_Check(r.ptr())) {
      while (PyObject* item = PyIter_Next(r.ptr())) emit_one(ctx, py::reinterpret_steal<py::object>(item));
      if (PyErr_Occurred()) throw py::error_already_set();
      return;
    }
    emit_one(ctx, r);
  }

  std::shared_ptr<const kind_info> kind_;
  std::unique_ptr<held_object> handler_, call_, pull_, finish_, checkpoint_, tool_;
  bool multi_ = false;
  std::vector<value> first_;  // values for output port 0 not yet emitted
};

}  // namespace

keep_thread_state::keep_thread_state() {
  // Once Python is finalizing, a thread that asks for the GIL is ended by pthread_exit, whose unwinding
  // the runtime's handlers would catch and turn into std::terminate: fail the node instead.
  if (!interpreter_alive()) throw std::runtime_error("the Python interpreter is shutting down");
  thread_local thread_state_keeper keeper;
}

void set_to_port_type(py::handle type) { to_port_type = type.inc_ref().ptr(); }

namespace {
std::atomic<bool> exit_hook_ran{false};
}
void mark_exiting() { exit_hook_ran.store(true); }
bool exiting() { return exit_hook_ran.load(); }

bool interpreter_alive() {
  if (!Py_IsInitialized()) return false;
#if PY_VERSION_HEX >= 0x030D0000
  return !Py_IsFinalizing();
#else
  return !_Py_IsFinalizing();
#endif
}

held_object::~held_object() {
  if (!o_) return;
  if (!interpreter_alive()) {
    o_.release();  // leaked: no thread may take the GIL now
    return;
  }
  py::gil_scoped_acquire gil;
  o_ = py::object();
}

std::string traceback_text(py::error_already_set& e) {
  py::list lines = py::module_::import("traceback").attr("format_exception")(e.type(), e.value(), e.trace());
  std::string text;
  for (auto l : lines) text += l.cast<std::string>();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

kind_def python_kind(const py::dict& spec, py::object make) {
  graph::kind_spec s;
  s.name = spec["name"].cast<std::string>();
  s.doc = spec["doc"].cast<std::string>();
  if (spec.contains("module") && !spec["module"].cast<std::string>().empty())
    s.origin = "python module " + spec["module"].cast<std::string>();
  s.inputs = ports_of(spec["inputs"].cast<py::list>());
  s.outputs = ports_of(spec["outputs"].cast<py::list>());
  s.params = params_of(spec["params"].cast<py::list>());
  s.stateful = spec.contains("stateful") && spec["stateful"].cast<bool>();
  s.blocking = true;
  s.window = 4096;  // each run and each credit wakes the node's thread: long runs (bench/python_bench.py)
  if (spec.contains("call") && !spec["call"].is_none()) {
    auto c = spec["call"].cast<py::dict>();
    s.call = graph::call_spec{c["doc"].cast<std::string>(), params_of(c["arguments"].cast<py::list>())};
  }
  auto info = std::make_shared<kind_info>();
  info->name = s.name;
  for (const auto& p : s.outputs) info->outputs.push_back(p.name);
  info->call = s.call;
  auto maker = std::make_shared<held_object>(std::move(make));
  std::shared_ptr<const kind_info> kind = info;
  node_factory factory = [maker, kind](const node_init& init) -> std::unique_ptr<node> {
    node_gil gil;
    try {
      py::dict params;
      for (const auto& [k, v] : init.params.all()) params[py::str(k)] = from_value(v);
      py::object handler = maker->get()(params, init.instance, init.replicas, init.attempt, from_value(init.restored));
      return std::make_unique<python_node>(kind, std::move(handler));
    } catch (py::error_already_set& e) {
      throw std::runtime_error(traceback_text(e));
    }
  };
  return {std::move(s), std::move(factory)};
}

}  // namespace loom::python
