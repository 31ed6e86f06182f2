// embed/convert.hpp: how a program's own C++ types become loom values and back, for the typed handles of a
// running graph (embed/running.hpp: input<T>, output<T>). Built in: loom::value itself, bool, every integer
// type (as a 64-bit int), float and double, std::string, loom::bytes, std::vector<T> and
// std::map<std::string, T> of convertible T. A program adds its own type by specialising loom::convert:
//
//   template <> struct loom::convert<order> {
//     static loom::value to(const order& o) { return loom::value_map{{"id", o.id}, {"total", o.total}}; }
//     static order from(const loom::value& v) { return {v.find("id")->as_int(), v.find("total")->as_float()}; }
//   };
//
// from() throws loom::type_error (runtime/value.hpp) when the value is not of the expected type.
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "loom/runtime/value.hpp"

namespace loom {

template <class T, class Enable = void>
struct convert;

template <>
struct convert<value> {
  static value to(const value& v) { return v; }
  static value from(const value& v) { return v; }
};

template <>
struct convert<bool> {
  static value to(bool b) { return value(b); }
  static bool from(const value& v) { return v.as_bool(); }
};

template <class T>
struct convert<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static value to(T i) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t))
      return value(static_cast<std::uint64_t>(i));
    else
      return value(static_cast<std::int64_t>(i));
  }
  static T from(const value& v) { return static_cast<T>(v.as_int()); }
};

template <class T>
struct convert<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static value to(T d) { return value(static_cast<double>(d)); }
  static T from(const value& v) { return static_cast<T>(v.as_float()); }
};

template <>
struct convert<std::string> {
  static value to(std::string s) { return value(std::move(s)); }
  static std::string from(const value& v) { return v.as_string(); }
};

template <>
struct convert<bytes> {
  static value to(bytes b) { return value(std::move(b)); }
  static bytes from(const value& v) { return v.as_bytes(); }
};

template <class T>
struct convert<std::vector<T>, std::enable_if_t<!std::is_same_v<T, std::byte>>> {
  static value to(const std::vector<T>& xs) {
    value_list l;
    l.reserve(xs.size());
    for (const auto& x : xs) l.push_back(convert<T>::to(x));
    return value(std::move(l));
  }
  static std::vector<T> from(const value& v) {
    std::vector<T> xs;
    xs.reserve(v.as_list().size());
    for (const auto& x : v.as_list()) xs.push_back(convert<T>::from(x));
    return xs;
  }
};

template <class T>
struct convert<std::map<std::string, T>> {
  static value to(const std::map<std::string, T>& xs) {
    value_map m;
    m.reserve(xs.size());
    for (const auto& [k, x] : xs) m.emplace_back(k, convert<T>::to(x));
    return value(std::move(m));
  }
  static std::map<std::string, T> from(const value& v) {
    std::map<std::string, T> xs;
    for (const auto& [k, x] : v.as_map()) xs.emplace(k, convert<T>::from(x));
    return xs;
  }
};

}  // namespace loom
