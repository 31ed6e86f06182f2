// graph/kind_spec.cpp: param spec construction and a kind's (possibly param-dependent) output ports.
#include "loom/graph/kind_spec.hpp"

namespace loom::graph {

const char* param_type_name(param_type t) {
  switch (t) {
    case param_type::boolean: return "bool";
    case param_type::integer: return "integer";
    case param_type::floating: return "float";
    case param_type::string: return "string";
    case param_type::list: return "list";
    case param_type::map: return "map";
    case param_type::any: return "any";
  }
  return "?";
}

param_spec param_spec::of(param_type t, std::string name, std::string doc) {
  param_spec p;
  p.type = t;
  p.name = std::move(name);
  p.doc = std::move(doc);
  return p;
}

const param_spec* kind_spec::find_param(std::string_view n) const {
  for (const auto& p : params)
    if (p.name == n) return &p;
  return nullptr;
}

bool kind_spec::blocks(const config& node_params) const {
  return blocking_for ? blocking_for(node_params) : blocking;
}

bool kind_spec::holds_state(const config& node_params) const {
  return stateful_for ? stateful_for(node_params) : stateful;
}

std::vector<port_spec> kind_spec::output_ports(const config& node_params) const {
  return outputs_for ? outputs_for(node_params) : outputs;
}

}  // namespace loom::graph
