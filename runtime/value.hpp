// runtime/value.hpp: the one value type that travels on every edge: null, bool, int, float, string, bytes,
// list, map and tensor. Values are immutable; scalars are held inline and everything larger is held by a
// shared pointer to const, so copying a value (fan-out, batching, queues) never copies its payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/tensor.hpp"

namespace loom {

class value;
using bytes = std::vector<std::byte>;
using value_list = std::vector<value>;
using value_map = std::vector<std::pair<std::string, value>>;  // keeps insertion order

class value {
 public:
  enum class type { null, boolean, integer, floating, string, bytes, list, map, tensor };

  value() = default;
  value(std::nullptr_t) {}
  value(bool b) : v_(b) {}
  value(int i) : v_(std::int64_t{i}) {}
  value(std::int64_t i) : v_(i) {}
  value(std::uint64_t i) : v_(static_cast<std::int64_t>(i)) {}
  value(double d) : v_(d) {}
  value(const char* s) : value(std::string(s)) {}
  value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}
  value(std::string_view s) : value(std::string(s)) {}
  value(bytes b) : v_(std::make_shared<const bytes>(std::move(b))) {}
  value(value_list l) : v_(std::make_shared<const value_list>(std::move(l))) {}
  value(value_map m) : v_(std::make_shared<const value_map>(std::move(m))) {}
  value(tensor t) : v_(std::make_shared<const tensor>(std::move(t))) {}

  type kind() const { return static_cast<type>(v_.index()); }
  static const char* type_name(type t);
  const char* type_name() const { return type_name(kind()); }

  bool is_null() const { return kind() == type::null; }
  bool is_bool() const { return kind() == type::boolean; }
  bool is_int() const { return kind() == type::integer; }
  bool is_float() const { return kind() == type::floating; }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return kind() == type::string; }
  bool is_bytes() const { return kind() == type::bytes; }
  bool is_list() const { return kind() == type::list; }
  bool is_map() const { return kind() == type::map; }
  bool is_tensor() const { return kind() == type::tensor; }

  // Accessors throw loom::type_error naming the expected and actual type.
  bool as_bool() const;
  std::int64_t as_int() const;
  double as_float() const;  // ints convert
  const std::string& as_string() const;
  const bytes& as_bytes() const;
  const value_list& as_list() const;
  const value_map& as_map() const;
  const tensor& as_tensor() const;

  // Map field lookup: nullptr when this is not a map or has no such field.
  const value* find(std::string_view key) const;

  // Deep equality (payloads compared, not pointers).
  friend bool operator==(const value& a, const value& b);

  // Bytes held by the payload (string, bytes, tensor data; lists and maps summed). Scalars: 0.
  std::size_t payload_size() const;
  // True when both values share one payload object (for tests of zero-copy fan-out).
  bool shares_payload_with(const value& other) const;

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const bytes>, std::shared_ptr<const value_list>,
               std::shared_ptr<const value_map>, std::shared_ptr<const tensor>>
      v_;
};

// Thrown by value accessors on a type mismatch.
struct type_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace loom
