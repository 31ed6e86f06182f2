// runtime/params.cpp: validated node params as runtime values.
#include "loom/runtime/params.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace loom {

bool params::has(std::string_view name) const {
  for (const auto& [k, v] : values_)
    if (k == name) return true;
  return false;
}

const value& params::get(std::string_view name) const {
  for (const auto& [k, v] : values_)
    if (k == name) return v;
  throw std::out_of_range(fmt::format("no param '{}'", name));
}

value to_value(const graph::config& c) {
  using t = graph::config::type;
  switch (c.kind()) {
    case t::null: return value{};
    case t::boolean: return value{c.as_bool()};
    case t::integer: return value{c.as_int()};
    case t::floating: return value{c.as_float()};
    case t::string: return value{c.as_string()};
    case t::list: {
      value_list l;
      l.reserve(c.as_list().size());
      for (const auto& e : c.as_list()) l.push_back(to_value(e));
      return value{std::move(l)};
    }
    case t::map: {
      value_map m;
      m.reserve(c.as_map().size());
      for (const auto& [k, e] : c.as_map()) m.emplace_back(k, to_value(e));
      return value{std::move(m)};
    }
  }
  return value{};
}

}  // namespace loom
