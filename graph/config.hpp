// graph/config.hpp: a config value as the user wrote it: a tree of scalars, lists and maps, each with its
// location. Node params are a config map; the runtime turns them into runtime::value once validated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "loom/graph/location.hpp"

namespace loom::graph {

class config;
using config_list = std::vector<config>;
using config_map = std::vector<std::pair<std::string, config>>;  // keeps the order written

class config {
 public:
  enum class type { null, boolean, integer, floating, string, list, map };

  config() = default;
  config(std::nullptr_t) {}
  config(bool b) : v_(b) {}
  config(int i) : v_(std::int64_t{i}) {}
  config(std::int64_t i) : v_(i) {}
  config(double d) : v_(d) {}
  config(const char* s) : v_(std::string(s)) {}
  config(std::string s) : v_(std::move(s)) {}
  config(config_list l) : v_(std::move(l)) {}
  config(config_map m) : v_(std::move(m)) {}

  type kind() const { return static_cast<type>(v_.index()); }
  bool is_null() const { return kind() == type::null; }
  bool is_bool() const { return kind() == type::boolean; }
  bool is_int() const { return kind() == type::integer; }
  bool is_float() const { return kind() == type::floating; }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return kind() == type::string; }
  bool is_list() const { return kind() == type::list; }
  bool is_map() const { return kind() == type::map; }

  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  double as_float() const { return is_int() ? static_cast<double>(as_int()) : std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const config_list& as_list() const { return std::get<config_list>(v_); }
  config_list& as_list() { return std::get<config_list>(v_); }
  const config_map& as_map() const { return std::get<config_map>(v_); }
  config_map& as_map() { return std::get<config_map>(v_); }

  // Map lookup: nullptr when this is not a map or has no such key.
  const config* find(std::string_view key) const;
  // Map insert-or-replace, keeping the position of an existing key.
  void set(std::string key, config value);

  // The location of this value in its source (an empty location for values made in code).
  const location& where() const { return where_; }
  config& at(location where) & { where_ = std::move(where); return *this; }
  config&& at(location where) && { where_ = std::move(where); return std::move(*this); }

  // Equal values, whatever their locations.
  friend bool operator==(const config& a, const config& b) { return a.v_ == b.v_; }

  // A short YAML-flow rendering: `42`, `"text"`, `[1, 2]`, `{a: 1}`.
  std::string str() const;
  static const char* type_name(type t);

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::string, config_list, config_map> v_;
  location where_;
};

}  // namespace loom::graph
