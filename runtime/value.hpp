// runtime/value.hpp: the one value type that travels on every edge: null, bool, int, float, string, bytes,
// list, map and tensor. Values are immutable; scalars are held inline and everything larger is held by a
// reference-counted pointer to const, so copying a value (fan-out, batching, queues) never copies its
// payload.
//
// The representation is 16 bytes: a type tag and one 8-byte word (the scalar, or the payload's pointer).
// Copy, move and destruction are inline and branch on the tag only: a scalar moves as two words and a
// payload costs one atomic increment per copy. (A std::variant cost a jump-table visit per move, copy and
// destruction: 10 % of the pipeline's per-value time; bench/RESULTS.md.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <atomic>
#include <bit>
#include <vector>

#include "loom/runtime/tensor.hpp"

namespace loom {

class value;
using bytes = std::vector<std::byte>;
using value_list = std::vector<value>;
using value_map = std::vector<std::pair<std::string, value>>;  // keeps insertion order

class value {
 public:
  enum class type { null, boolean, integer, floating, string, bytes, list, map, tensor };

  value() noexcept = default;
  value(std::nullptr_t) noexcept {}
  value(bool b) noexcept : t_(type::boolean), w_(b ? 1 : 0) {}
  value(int i) noexcept : value(std::int64_t{i}) {}
  value(std::int64_t i) noexcept : t_(type::integer), w_(static_cast<std::uint64_t>(i)) {}
  value(std::uint64_t i) noexcept : t_(type::integer), w_(i) {}
  value(double d) noexcept : t_(type::floating), w_(std::bit_cast<std::uint64_t>(d)) {}
  value(const char* s) : value(std::string(s)) {}
  value(std::string s);
  value(std::string_view s) : value(std::string(s)) {}
  value(bytes b);
  value(value_list l);
  value(value_map m);
  value(tensor t);

  value(const value& o) noexcept : t_(o.t_), w_(o.w_) { retain(); }
  value(value&& o) noexcept : t_(o.t_), w_(o.w_) { o.t_ = type::null; }
  // Both assignments read `o` before releasing what this value held: `o` may live inside that payload.
  value& operator=(const value& o) noexcept {
    auto t = o.t_;
    auto w = o.w_;
    o.retain();
    release();
    t_ = t;
    w_ = w;
    return *this;
  }
  value& operator=(value&& o) noexcept {
    if (this != &o) {
      auto t = o.t_;
      auto w = o.w_;
      o.t_ = type::null;
      release();
      t_ = t;
      w_ = w;
    }
    return *this;
  }
  ~value() { release(); }

  type kind() const { return t_; }
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
  // as_int and as_float are inline (one tag compare): codecs and sinks call them once per value.
  bool as_bool() const;
  std::int64_t as_int() const {
    if (t_ != type::integer) [[unlikely]]
      wrong_type(type::integer);
    return static_cast<std::int64_t>(w_);
  }
  double as_float() const {  // ints convert
    if (t_ == type::floating) [[likely]]
      return std::bit_cast<double>(w_);
    if (t_ != type::integer) wrong_type(type::floating);
    return static_cast<double>(static_cast<std::int64_t>(w_));
  }
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
  // A payload: its reference count, then the object (box_of<T> in value.cpp).
  struct box {
    std::atomic<std::uint32_t> refs{1};
  };
  template <class T>
  struct box_of;
  bool boxed() const noexcept { return t_ >= type::string; }
  box* payload() const noexcept { return std::bit_cast<box*>(w_); }
  void retain() const noexcept {
    if (boxed()) payload()->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (boxed() && payload()->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }
  void destroy() noexcept;  // the last reference went: deletes the payload
  [[noreturn]] void wrong_type(type expected) const;  // throws type_error naming both types
  template <class T>
  void hold(T&& object);
  template <class T>
  const T& object() const;

  type t_ = type::null;
  std::uint64_t w_ = 0;  // bool (0/1), int64, double's bits, or the box's address
};

// Thrown by value accessors on a type mismatch.
struct type_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace loom
