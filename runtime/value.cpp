// runtime/value.cpp: value accessors, equality and payload accounting.
#include "runtime/value.hpp"

#include <fmt/format.h>

namespace loom {
namespace {

[[noreturn]] void mismatch(value::type expected, value::type found) {
  throw type_error(fmt::format("expected a {} value, found {}", value::type_name(expected),
                               value::type_name(found)));
}

}  // namespace

const char* value::type_name(type t) {
  switch (t) {
    case type::null: return "null";
    case type::boolean: return "bool";
    case type::integer: return "int";
    case type::floating: return "float";
    case type::string: return "string";
    case type::bytes: return "bytes";
    case type::list: return "list";
    case type::map: return "map";
    case type::tensor: return "tensor";
  }
  return "?";
}

bool value::as_bool() const {
  if (!is_bool()) mismatch(type::boolean, kind());
  return std::get<bool>(v_);
}

std::int64_t value::as_int() const {
  if (!is_int()) mismatch(type::integer, kind());
  return std::get<std::int64_t>(v_);
}

double value::as_float() const {
  if (is_int()) return static_cast<double>(std::get<std::int64_t>(v_));
  if (!is_float()) mismatch(type::floating, kind());
  return std::get<double>(v_);
}

const std::string& value::as_string() const {
  if (!is_string()) mismatch(type::string, kind());
  return *std::get<std::shared_ptr<const std::string>>(v_);
}

const bytes& value::as_bytes() const {
  if (!is_bytes()) mismatch(type::bytes, kind());
  return *std::get<std::shared_ptr<const bytes>>(v_);
}

const value_list& value::as_list() const {
  if (!is_list()) mismatch(type::list, kind());
  return *std::get<std::shared_ptr<const value_list>>(v_);
}

const value_map& value::as_map() const {
  if (!is_map()) mismatch(type::map, kind());
  return *std::get<std::shared_ptr<const value_map>>(v_);
}

const tensor& value::as_tensor() const {
  if (!is_tensor()) mismatch(type::tensor, kind());
  return *std::get<std::shared_ptr<const tensor>>(v_);
}

const value* value::find(std::string_view key) const {
  if (!is_map()) return nullptr;
  for (const auto& [k, v] : as_map())
    if (k == key) return &v;
  return nullptr;
}

bool operator==(const value& a, const value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case value::type::null: return true;
    case value::type::boolean: return a.as_bool() == b.as_bool();
    case value::type::integer: return a.as_int() == b.as_int();
    case value::type::floating: return a.as_float() == b.as_float();
    case value::type::string: return a.as_string() == b.as_string();
    case value::type::bytes: return a.as_bytes() == b.as_bytes();
    case value::type::list: return a.as_list() == b.as_list();
    case value::type::map: return a.as_map() == b.as_map();
    case value::type::tensor: return a.as_tensor() == b.as_tensor();
  }
  return false;
}

std::size_t value::payload_size() const {
  switch (kind()) {
    case type::string: return as_string().size();
    case type::bytes: return as_bytes().size();
    case type::tensor: return as_tensor().nbytes();
    case type::list: {
      std::size_t n = 0;
      for (const auto& v : as_list()) n += v.payload_size();
      return n;
    }
    case type::map: {
      std::size_t n = 0;
      for (const auto& [k, v] : as_map()) n += k.size() + v.payload_size();
      return n;
    }
    default: return 0;
  }
}

bool value::shares_payload_with(const value& other) const {
  if (v_.index() != other.v_.index()) return false;
  return std::visit(
      [&](const auto& p) -> bool {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, std::monostate> || std::is_same_v<P, bool> ||
                      std::is_same_v<P, std::int64_t> || std::is_same_v<P, double>) {
          return false;
        } else {
          return p.get() == std::get<P>(other.v_).get();
        }
      },
      v_);
}

}  // namespace loom
