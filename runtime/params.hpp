// runtime/params.hpp: a node's params after validation, defaults filled, as runtime values. Kinds read
// them in their constructor; a missing or mistyped param here is a bug in the kind's spec (LOOM_ASSERT).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "loom/graph/config.hpp"
#include "loom/runtime/value.hpp"

namespace loom {

class params {
 public:
  params() = default;
  explicit params(value_map values) : values_(std::move(values)) {}

  bool has(std::string_view name) const;
  const value& get(std::string_view name) const;  // throws std::out_of_range naming the param
  std::int64_t get_int(std::string_view name) const { return get(name).as_int(); }
  double get_float(std::string_view name) const { return get(name).as_float(); }
  bool get_bool(std::string_view name) const { return get(name).as_bool(); }
  const std::string& get_string(std::string_view name) const { return get(name).as_string(); }
  const value_map& all() const { return values_; }

 private:
  value_map values_;
};

// A config tree as a runtime value (maps stay maps, lists stay lists).
value to_value(const graph::config& c);

}  // namespace loom
