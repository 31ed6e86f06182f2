// runtime/json.cpp: values to and from JSON. Bytes travel as base64 under "$bytes"; tensors as
// {"$tensor": {"dtype", "shape", "data"}} with host data as a flat number list.
#include "loom/runtime/json.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <stdexcept>

namespace loom {
namespace {

constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const bytes& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto n = (unsigned(in[i]) << 16) | (unsigned(in[i + 1]) << 8) | unsigned(in[i + 2]);
    out += {b64[(n >> 18) & 63], b64[(n >> 12) & 63], b64[(n >> 6) & 63], b64[n & 63]};
  }
  if (i + 1 == in.size()) {
    auto n = unsigned(in[i]) << 16;
    out += {b64[(n >> 18) & 63], b64[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    auto n = (unsigned(in[i]) << 16) | (unsigned(in[i + 1]) << 8);
    out += {b64[(n >> 18) & 63], b64[(n >> 12) & 63], b64[(n >> 6) & 63], '='};
  }
  return out;
}

bytes base64_decode(const std::string& in) {
  auto digit = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  bytes out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int d = digit(c);
    if (d < 0) throw std::invalid_argument("invalid base64 in $bytes");
    acc = (acc << 6) | unsigned(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(std::byte((acc >> bits) & 0xff));
    }
  }
  return out;
}

using ojson = nlohmann::ordered_json;

template <class T>
void append_elements(ojson& data, const tensor& t) {
  const T* p = t.host_data<T>();
  for (std::int64_t i = 0; i < t.elements(); ++i) data.push_back(p[i]);
}

ojson tensor_json(const tensor& t) {
  ojson j{{"dtype", dtype_name(t.type())}, {"shape", t.shape()}};
  if (t.device() >= 0) {
    j["device"] = t.device();
    return ojson{{"$tensor", j}};
  }
  auto& data = j["data"] = ojson::array();
  switch (t.type()) {
    case dtype::f32: append_elements<float>(data, t); break;
    case dtype::f64: append_elements<double>(data, t); break;
    case dtype::i32: append_elements<std::int32_t>(data, t); break;
    case dtype::i64: append_elements<std::int64_t>(data, t); break;
    case dtype::i8: append_elements<std::int8_t>(data, t); break;
    case dtype::u8: append_elements<std::uint8_t>(data, t); break;
    default: j.erase("data"); j["bytes"] = t.nbytes(); break;  // f16/bf16: no portable JSON form
  }
  return ojson{{"$tensor", j}};
}

// One element, checked: a number the dtype can hold (an out-of-range conversion would be undefined).
template <class T, class J>
T element(const J& e) {
  if constexpr (std::is_integral_v<T>) {
    if (!e.is_number_integer()) throw std::invalid_argument("$tensor: an integer tensor holds a non-integer");
    if (e.is_number_unsigned()) {
      auto u = e.template get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        throw std::invalid_argument("$tensor: an element is out of its dtype's range");
      return static_cast<T>(u);
    }
    auto i = e.template get<std::int64_t>();
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
      throw std::invalid_argument("$tensor: an element is out of its dtype's range");
    return static_cast<T>(i);
  } else {
    if (!e.is_number()) throw std::invalid_argument("$tensor: an element is not a number");
    auto d = e.template get<double>();
    if (std::isfinite(d) && std::abs(d) > static_cast<double>(std::numeric_limits<T>::max()))
      throw std::invalid_argument("$tensor: an element is out of its dtype's range");
    return static_cast<T>(d);
  }
}

template <class T, class J>
tensor tensor_of(const J& data, std::vector<std::int64_t> shape) {
  std::vector<T> v;
  v.reserve(data.size());
  for (const auto& e : data) v.push_back(element<T>(e));
  auto t = tensor::from<T>(std::move(shape), v);
  return t;
}

template <class J>
value tensor_from_json(const J& j) {
  auto type = parse_dtype(j.at("dtype").template get<std::string>());
  const auto& dims = j.at("shape");
  const auto& data = j.at("data");
  if (!dims.is_array() || !data.is_array()) throw std::invalid_argument("$tensor shape and data must be arrays");
  std::vector<std::int64_t> shape;
  std::uint64_t n = 1;  // the element count, never past data.size() (no overflow)
  for (const auto& d : dims) {
    if (!d.is_number_integer() || (!d.is_number_unsigned() && d.template get<std::int64_t>() < 0))
      throw std::invalid_argument("$tensor shape must hold non-negative integers");
    auto u = d.template get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw std::invalid_argument("$tensor data does not match its shape");
    shape.push_back(static_cast<std::int64_t>(u));
    n = u == 0 ? 0 : (n > data.size() / u ? data.size() + 1 : n * u);
  }
  if (n != data.size()) throw std::invalid_argument("$tensor data does not match its shape");
  switch (type) {
    case dtype::f32: return value{tensor_of<float, J>(data, shape)};
    case dtype::f64: return value{tensor_of<double, J>(data, shape)};
    case dtype::i32: return value{tensor_of<std::int32_t, J>(data, shape)};
    case dtype::i64: return value{tensor_of<std::int64_t, J>(data, shape)};
    default: throw std::invalid_argument("$tensor: only f32, f64, i32 and i64 tensors read from JSON");
  }
}

// Trees from read_json are at most hard_max_json_depth deep; this bounds the recursion for trees made in
// code too (no input can exhaust the stack through from_json).
constexpr int max_parse_depth = 512;

template <class J>
value parse(const J& j, int depth = 0) {
  if (depth > max_parse_depth)
    throw std::invalid_argument("JSON nested deeper than " + std::to_string(max_parse_depth) + " levels");
  switch (j.type()) {
    case J::value_t::null: return value{};
    case J::value_t::boolean: return value{j.template get<bool>()};
    case J::value_t::number_integer: return value{j.template get<std::int64_t>()};
    case J::value_t::number_unsigned: {  // above INT64_MAX: the nearest double, never a wrapped negative
      auto u = j.template get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return value{static_cast<double>(u)};
      return value{static_cast<std::int64_t>(u)};
    }
    case J::value_t::number_float: return value{j.template get<double>()};
    case J::value_t::string: return value{j.template get<std::string>()};
    case J::value_t::array: {
      value_list l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(parse(e, depth + 1));
      return value{std::move(l)};
    }
    case J::value_t::object: {
      if (j.size() == 1 && j.contains("$bytes") && j["$bytes"].is_string())
        return value{base64_decode(j["$bytes"].template get<std::string>())};
      if (j.size() == 1 && j.contains("$tensor") && j["$tensor"].is_object()) return tensor_from_json(j["$tensor"]);
      value_map m;
      m.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) m.emplace_back(it.key(), parse(it.value(), depth + 1));
      return value{std::move(m)};
    }
    default: return value{};
  }
}

}  // namespace

nlohmann::ordered_json to_json(const value& v) {
  switch (v.kind()) {
    case value::type::null: return nullptr;
    case value::type::boolean: return v.as_bool();
    case value::type::integer: return v.as_int();
    case value::type::floating: {
      double d = v.as_float();
      if (!std::isfinite(d)) return nullptr;  // JSON has no inf/nan
      return d;
    }
    case value::type::string: return v.as_string();
    case value::type::bytes: return ojson{{"$bytes", base64_encode(v.as_bytes())}};
    case value::type::list: {
      auto a = ojson::array();
      for (const auto& e : v.as_list()) a.push_back(to_json(e));
      return a;
    }
    case value::type::map: {
      auto o = ojson::object();
      for (const auto& [k, e] : v.as_map()) o[k] = to_json(e);
      return o;
    }
    case value::type::tensor: return tensor_json(v.as_tensor());
  }
  return nullptr;
}

value from_json(const nlohmann::ordered_json& j) { return parse(j); }
value from_json(const nlohmann::json& j) { return parse(j); }

std::string to_json_line(const value& v) {
  return to_json(v).dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string to_text(const value& v) { return v.is_string() ? v.as_string() : to_json_line(v); }

}  // namespace loom
