// runtime/value.cpp: value accessors, equality and payload accounting.
#include "loom/runtime/value.hpp"

#include <fmt/format.h>

namespace loom {
namespace {

[[noreturn]] void mismatch(value::type expected, value::type found) {
  throw type_error(fmt::format("expected a {} value, found {}", value::type_name(expected),
                               value::type_name(found)));
}

}  // namespace

// A payload: its count (the base, which value reaches without knowing T) and the object.
template <class T>
struct value::box_of : value::box {
  explicit box_of(T&& o) : object(std::move(o)) {}
  const T object;
};

template <class T>
void value::hold(T&& object) {
  box* b = new box_of<std::decay_t<T>>(std::forward<T>(object));
  w_ = std::bit_cast<std::uint64_t>(b);
}

template <class T>
const T& value::object() const {
  return static_cast<const box_of<T>*>(payload())->object;
}

value::value(std::string s) : t_(type::string) { hold(std::move(s)); }
value::value(bytes b) : t_(type::bytes) { hold(std::move(b)); }
value::value(value_list l) : t_(type::list) { hold(std::move(l)); }
value::value(value_map m) : t_(type::map) { hold(std::move(m)); }
value::value(tensor t) : t_(type::tensor) { hold(std::move(t)); }

void value::destroy() noexcept {
  box* p = payload();
  switch (t_) {
    case type::string: delete static_cast<box_of<std::string>*>(p); break;
    case type::bytes: delete static_cast<box_of<bytes>*>(p); break;
    case type::list: delete static_cast<box_of<value_list>*>(p); break;
    case type::map: delete static_cast<box_of<value_map>*>(p); break;
    case type::tensor: delete static_cast<box_of<tensor>*>(p); break;
    default: break;
  }
  t_ = type::null;
}

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
  return w_ != 0;
}

void value::wrong_type(type expected) const { mismatch(expected, kind()); }

const std::string& value::as_string() const {
  if (!is_string()) mismatch(type::string, kind());
  return object<std::string>();
}

const bytes& value::as_bytes() const {
  if (!is_bytes()) mismatch(type::bytes, kind());
  return object<bytes>();
}

const value_list& value::as_list() const {
  if (!is_list()) mismatch(type::list, kind());
  return object<value_list>();
}

const value_map& value::as_map() const {
  if (!is_map()) mismatch(type::map, kind());
  return object<value_map>();
}

const tensor& value::as_tensor() const {
  if (!is_tensor()) mismatch(type::tensor, kind());
  return object<tensor>();
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
  return t_ == other.t_ && boxed() && w_ == other.w_;
}

}  // namespace loom
