// graph/config.cpp: map access and the short YAML-flow rendering of config values.
#include "loom/graph/config.hpp"

#include <fmt/format.h>

#include <cmath>

#include "loom/graph/detail/scalar.hpp"

namespace loom::graph {

const config* config::find(std::string_view key) const {
  if (!is_map()) return nullptr;
  for (const auto& [k, v] : as_map())
    if (k == key) return &v;
  return nullptr;
}

void config::set(std::string key, config value) {
  if (!is_map()) v_ = config_map{};
  for (auto& [k, v] : as_map()) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  as_map().emplace_back(std::move(key), std::move(value));
}

namespace {

// A string needs quotes when YAML would read it back as something else or it holds flow syntax.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  for (char c : s)
    if (c == ':' || c == '#' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}' || c == '"' ||
        c == '\'' || c == '\n' || c == '\t')
      return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  return !resolve_plain_scalar(s).is_string() || s.front() == '-' || s.front() == '&' || s.front() == '*' ||
         s.front() == '!' || s.front() == '|' || s.front() == '>' || s.front() == '%' || s.front() == '@' ||
         s.front() == '`' || s.front() == '?';
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

std::string float_str(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string config::str() const {
  switch (kind()) {
    case type::null: return "null";
    case type::boolean: return as_bool() ? "true" : "false";
    case type::integer: return fmt::format("{}", as_int());
    case type::floating: return float_str(std::get<double>(v_));
    case type::string: return needs_quotes(as_string()) ? quote(as_string()) : as_string();
    case type::list: {
      std::string out = "[";
      for (const auto& item : as_list()) out += (out.size() > 1 ? ", " : "") + item.str();
      return out + "]";
    }
    case type::map: {
      std::string out = "{";
      for (const auto& [k, v] : as_map()) out += (out.size() > 1 ? ", " : "") + k + ": " + v.str();
      return out + "}";
    }
  }
  return "?";
}

const char* config::type_name(type t) {
  switch (t) {
    case type::null: return "null";
    case type::boolean: return "bool";
    case type::integer: return "integer";
    case type::floating: return "float";
    case type::string: return "string";
    case type::list: return "list";
    case type::map: return "map";
  }
  return "?";
}

}  // namespace loom::graph
