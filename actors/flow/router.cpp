// flow.router: sends each value to one output port chosen by a key: the value itself, or one field of a
// map value, rendered as text (loom::to_text). The output ports are the distinct port names of `routes`,
// in the order written, then `default`.
//   inputs:  in (any)
//   outputs: one per distinct value of `routes`, then default (values no route matches)
//   params:  field (string, default "": route on the value itself), routes (map, required: key text ->
//            output port name), unmatched (string, default "default", one of default|fail)
// A value no route matches (or a map without the field) goes to `default`; when `default` is not
// connected that is an error naming the value, and validation warns about it at the node (an error when
// no route leads to another port: every value goes to `default`). With `unmatched: fail` the graph says
// so on purpose (every value should have a route): such a value fails the run whatever `default` is
// connected to, and there is no warning.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

// Appends `port` to `ports` unless it is there already or is `default` (always last); returns its index.
std::size_t add_port(std::vector<std::string>& ports, const std::string& port) {
  auto it = std::find(ports.begin(), ports.end(), port);
  if (it != ports.end()) return static_cast<std::size_t>(it - ports.begin());
  ports.push_back(port);
  return ports.size() - 1;
}

bool fails_unmatched(const graph::config& params) {
  const auto* u = params.find("unmatched");
  return u != nullptr && u->is_string() && u->as_string() == "fail";
}

// `default`: with `unmatched: default` (the default) a value sent there while it is unconnected fails
// the run, which validation warns about; when no route leads to another port (`routes: {}`, or every route
// names `default`) every value goes there, and validation says so as an error.
graph::port_spec default_port(bool fail, bool only = false) {
  if (fail) return {"default", "nothing (unmatched: fail)"};
  graph::port_spec p{"default", only ? "every value: no route leads to another output" : "values no route matches"};
  p.unconnected = only ? graph::if_unconnected::error : graph::if_unconnected::warn;
  p.hint = only ? "add routes to other outputs" : "set `unmatched: fail` when every value has a route";
  return p;
}

// The router's output ports as written in its params (before validation: tolerate anything).
std::vector<graph::port_spec> router_ports(const graph::config& params) {
  std::vector<std::string> names;
  bool only_default = false;  // routes that all lead to `default` (or none): every value goes there
  if (const auto* routes = params.find("routes"); routes != nullptr && routes->is_map()) {
    only_default = true;
    for (const auto& [key, port] : routes->as_map()) {
      if (port.is_string() && port.as_string() != "default") add_port(names, port.as_string());
      only_default = only_default && port.is_string() && port.as_string() == "default";
    }
  }
  std::vector<graph::port_spec> ports;
  for (auto& n : names) ports.push_back({n, "values routed to " + n});
  ports.push_back(default_port(fails_unmatched(params), only_default));
  return ports;
}

class router final : public node {
 public:
  explicit router(const node_init& init)
      : field_(init.params.get_string("field")), fail_(init.params.get_string("unmatched") == "fail") {
    const value_map& routes = init.params.get("routes").as_map();
    for (const auto& [key, port] : routes)
      if (!port.is_string())
        throw std::invalid_argument(
            fmt::format("routes: `{}` must name an output port (a string), not a {}", key, port.type_name()));
    std::vector<std::string> ports;
    for (const auto& [key, port] : routes)
      if (port.as_string() != "default") add_port(ports, port.as_string());
    default_ = ports.size();
    for (const auto& [key, port] : routes) {
      const std::string& name = port.as_string();
      routes_.emplace(key, name == "default" ? default_ : add_port(ports, name));
    }
    if (init.outputs != default_ + 1)
      throw std::logic_error(fmt::format("flow.router {}: {} output ports given, routes make {}", init.name,
                                         init.outputs, default_ + 1));
  }

  void on_message(context& ctx, std::size_t port, const value& v) override {
    const value* key = field_.empty() ? &v : v.find(field_);
    std::string text = key != nullptr ? to_text(*key) : std::string();
    auto it = key != nullptr ? routes_.find(text) : routes_.end();
    if (it != routes_.end()) return ctx.emit(it->second, v);
    if (fail_ || !ctx.connected(default_)) {
      std::string what = key == nullptr ? fmt::format("a value without field `{}`", field_)
                                        : fmt::format("value `{}`", text);
      throw std::runtime_error(fmt::format("no route for {} and {}", what,
                                           fail_ ? "`unmatched: fail`" : "output `default` is not connected"));
    }
    ctx.emit(default_, v);
  }

 private:
  std::string field_;
  bool fail_;                                               // unmatched: fail
  std::map<std::string, std::size_t, std::less<>> routes_;  // key text -> output port
  std::size_t default_ = 0;                                 // the `default` port: the last one
};

}  // namespace

kind_def router_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.router";
  s.doc = "sends each value to the output its key (the value, or one field) routes to";
  s.inputs = {{"in", "any values (maps when field is set)"}};
  s.outputs = {default_port(false)};
  s.outputs_for = router_ports;
  s.params = {
      param_spec::string("field", "route on this field of a map value; empty: on the value itself").def(""),
      param_spec::map("routes", "key (the value as text) -> output port name").require(),
      param_spec::string("unmatched",
                         "default: a value no route matches goes to output `default` (unconnected: it fails the "
                         "run); fail: it fails the run")
          .def("default")
          .one_of({"default", "fail"})};
  return {std::move(s), [](const node_init& init) { return std::make_unique<router>(init); }};
}

}  // namespace loom::actors
