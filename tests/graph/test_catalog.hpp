// tests/graph/test_catalog.hpp: a kind catalog mirroring the built-in kinds' ports and params, so graph tests
// validate against the same contract as the runtime without depending on it.
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "loom/graph/kind_spec.hpp"

namespace loom::graph::testing {

inline std::vector<port_spec> ports(std::initializer_list<const char*> names) {
  std::vector<port_spec> out;
  for (const char* n : names) out.push_back({n, ""});
  return out;
}

// flow.router's outputs: the distinct string values of its `routes` map, plus `default`, where a value
// fails the run while it is unconnected (unless `unmatched: fail` says that is meant): a warning, an error
// when every route leads there.
inline std::vector<port_spec> router_outputs(const config& params) {
  std::vector<port_spec> out;
  std::set<std::string> seen;
  if (const config* routes = params.find("routes"); routes != nullptr && routes->is_map())
    for (const auto& [key, value] : routes->as_map())
      if (value.is_string() && value.as_string() != "default" && seen.insert(value.as_string()).second)
        out.push_back({value.as_string(), ""});
  const config* unmatched = params.find("unmatched");
  bool fail = unmatched != nullptr && unmatched->is_string() && unmatched->as_string() == "fail";
  if (fail) {
    out.push_back({"default", "nothing"});
  } else if (out.empty() && params.find("routes") != nullptr && params.find("routes")->is_map() &&
             std::all_of(params.find("routes")->as_map().begin(), params.find("routes")->as_map().end(),
                         [](const auto& r) { return r.second.is_string(); })) {
    out.push_back({"default", "every value: no route leads to another output", if_unconnected::error,
                   "add routes to other outputs"});
  } else {
    out.push_back({"default", "values no route matches", if_unconnected::warn, "set `unmatched: fail`"});
  }
  return out;
}

inline std::vector<kind_spec> builtin_kinds() {
  using p = param_spec;
  std::vector<kind_spec> k;
  k.push_back({"source.sequence", "emits count integers", {}, ports({"out"}),
               {p::integer("count", "how many").def(10).at_least(0), p::integer("start", "first").def(0),
                p::integer("step", "increment").def(1)}, {}, {}});
  k.push_back({"source.value", "emits one value", {}, ports({"out"}),
               {p::any("value", "the value").require(), p::integer("repeat", "times").def(1).at_least(0)}, {}, {}});
  k.push_back({"source.blob", "emits byte blobs", {}, ports({"out"}),
               {p::integer("count", "how many").def(1000).at_least(0),
                p::integer("size", "bytes each").def(1024).at_least(0).at_most(1073741824)}, {}, {}});
  k.push_back({"source.file", "reads a file", {}, ports({"out"}),
               {p::string("path", "the file").require(),
                p::string("format", "how to split").def("lines").one_of({"lines", "jsonl"})}, {}, {}});
  k.push_back({"flow.forward", "passes messages on", ports({"in"}), ports({"out"}), {}, {}, {}});
  k.push_back({"flow.batch", "groups messages", ports({"in"}), ports({"out"}),
               {p::integer("size", "per batch").def(16).at_least(1)}, {}, {}});
  k.push_back({"flow.gather", "joins count messages", ports({"in"}), ports({"out"}),
               {p::integer("count", "how many").require().at_least(1)}, {}, {}});
  k.push_back({"flow.router", "routes by a field", ports({"in"}), ports({"default"}),
               {p::string("field", "the field").def(""), p::map("routes", "value -> port").require(),
                p::string("unmatched", "default or fail").def("default").one_of({"default", "fail"})}, {},
               router_outputs});
  k.push_back({"flow.throttle", "limits the rate", ports({"in"}), ports({"out"}),
               {p::floating("rate", "messages per second").require().at_least(0.001)}, {}, {}});
  k.push_back({"sink.file", "writes a file", ports({"in"}), {},
               {p::string("path", "the file").require(),
                p::string("format", "how to write").def("jsonl").one_of({"jsonl", "text"})}, {}, {}});
  k.push_back({"sink.stdout", "prints", ports({"in"}), {},
               {p::string("format", "how to print").def("text").one_of({"text", "jsonl"})}, {}, {}});
  k.push_back({"sink.count", "counts messages", ports({"in"}), {},
               {p::integer("expect", "the count expected").at_least(0)}, {}, {}});
  kind_spec calc{"tool.calculator", "evaluates arithmetic", {}, {}, {}, {}, {}};
  calc.call = call_spec{"Evaluates an arithmetic expression.", {p::string("expression", "the expression").require()}};
  k.push_back(calc);
  for (auto& x : k)  // as the built-ins say: sources, sinks, batch and gather hold state across values
    x.stateful = x.name.starts_with("source.") || x.name.starts_with("sink.") || x.name == "flow.batch" ||
                 x.name == "flow.gather";
  return k;
}

class test_catalog : public kind_catalog {
 public:
  test_catalog() : kinds_(builtin_kinds()) {}
  const kind_spec* find_kind(std::string_view name) const override {
    for (const auto& k : kinds_)
      if (k.name == name) return &k;
    return nullptr;
  }
  std::vector<std::string> kind_names() const override {
    std::vector<std::string> names;
    for (const auto& k : kinds_) names.push_back(k.name);
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::vector<kind_spec> kinds_;
};

}  // namespace loom::graph::testing
