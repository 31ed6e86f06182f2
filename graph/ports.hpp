// graph/ports.hpp: how an edge endpoint names a port. An empty port name means the kind's default: `out`
// (or its only output) on the sending side, `in` (or its only input) on the receiving side.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "loom/graph/kind_spec.hpp"

namespace loom::graph {

// The index of the named port in `ports`, or an error message naming the valid ports.
struct port_lookup {
  std::variant<std::size_t, std::string> result;
  bool ok() const { return result.index() == 0; }
  std::size_t index() const { return std::get<0>(result); }
  const std::string& error() const { return std::get<1>(result); }
};

// `direction` is "input" or "output", for messages; `default_name` is "in" or "out".
port_lookup find_port(const std::vector<port_spec>& ports, std::string_view name, std::string_view direction,
                      std::string_view default_name);

inline port_lookup find_output(const kind_spec& k, const config& params, std::string_view name) {
  return find_port(k.output_ports(params), name, "output", "out");
}
inline port_lookup find_input(const kind_spec& k, std::string_view name) {
  return find_port(k.inputs, name, "input", "in");
}

}  // namespace loom::graph
