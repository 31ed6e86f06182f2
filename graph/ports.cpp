// graph/ports.cpp: resolving an endpoint's port name against a kind's declared ports.
#include "loom/graph/ports.hpp"

#include <fmt/format.h>

namespace loom::graph {

port_lookup find_port(const std::vector<port_spec>& ports, std::string_view name, std::string_view direction,
                      std::string_view default_name) {
  std::string names;
  for (const auto& p : ports) names += (names.empty() ? "" : ", ") + p.name;
  if (ports.empty()) return {fmt::format("it has no {} ports", direction)};
  if (name.empty()) {
    for (std::size_t i = 0; i < ports.size(); ++i)
      if (ports[i].name == default_name) return {i};
    if (ports.size() == 1) return {std::size_t{0}};
    return {fmt::format("it has several {} ports; name one: {}", direction, names)};
  }
  for (std::size_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == name) return {i};
  return {fmt::format("it has no {} port `{}`; its {}s: {}", direction, name, direction, names)};
}

}  // namespace loom::graph
