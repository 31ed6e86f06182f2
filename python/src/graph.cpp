// python/src/graph.cpp: GraphData's C++ side (py_graph in handles.hpp): nodes and edges added from Python
// with their call sites (the file and line diagnostics name), and read back as dicts.
#include <pybind11/stl.h>

#include "handles.hpp"
#include "loom/graph/builder.hpp"
#include "values.hpp"

namespace loom::python {

graph::location location_of(const std::string& file, int line, int column) {
  return graph::location{std::make_shared<const std::string>(file), line, column};
}

void py_graph::add_node(const std::string& name, const std::string& kind, const py::dict& params,
                        const std::string& file, int line, std::optional<int> replicas, std::optional<int> restarts,
                        const std::vector<std::string>& tools, std::optional<std::string> on_host,
                        std::optional<double> cpus, std::optional<int> gpus) {
  if (g.find(name) != nullptr) throw py::value_error("graph `" + g.name + "` already has a node `" + name + "`");
  graph::builder b(g.name);
  auto nb = b.node(name, kind, graph::call_site{file.c_str(), line, 0});
  auto where = location_of(file, line, 0);
  for (auto [k, v] : params) nb.param(k.cast<std::string>(), to_config(v, where));
  if (replicas) nb.replicas(*replicas);
  if (restarts) nb.restarts(*restarts);
  for (const auto& t : tools) nb.tool(t);
  if (on_host) nb.on_host(*on_host);
  if (cpus) nb.cpus(*cpus);
  if (gpus) nb.gpus(*gpus);
  auto built = b.build();
  auto& n = built.nodes.front();
  for (const char* field : {"params", "replicas", "restarts", "tools"}) n.fields[field] = where;
  g.nodes.push_back(std::move(n));
}

void py_graph::add_edge(const std::string& from, const std::string& to, std::optional<std::int64_t> capacity,
                        const std::string& file, int line) {
  graph::builder b(g.name);
  b.edge(from, to, capacity, graph::call_site{file.c_str(), line, 0});
  g.edges.push_back(b.build().edges.front());
}

py::list py_graph::nodes() const {
  py::list out;
  for (const auto& n : g.nodes) {
    py::dict x;
    x["name"] = n.name;
    x["kind"] = n.kind;
    x["params"] = from_config(n.params);
    x["replicas"] = n.replicas;
    x["restarts"] = n.restarts;
    x["tools"] = n.tools;
    x["where"] = n.where.str();
    out.append(x);
  }
  return out;
}

py::list py_graph::edges() const {
  py::list out;
  for (const auto& e : g.edges) {
    py::dict x;
    x["from"] = e.from.str();
    x["to"] = e.to.str();
    x["capacity"] = e.capacity ? py::object(py::int_(*e.capacity)) : py::object(py::none());
    x["where"] = e.where.str();
    out.append(x);
  }
  return out;
}

}  // namespace loom::python
