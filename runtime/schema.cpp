// runtime/schema.cpp: JSON schemas from param specs, and checking call requests against them.
#include "loom/runtime/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "loom/runtime/json.hpp"
#include "loom/runtime/params.hpp"

namespace loom {
namespace {

using ojson = nlohmann::ordered_json;

ojson param_schema(const graph::param_spec& p) {
  ojson s;
  switch (p.type) {
    case graph::param_type::boolean: s["type"] = "boolean"; break;
    case graph::param_type::integer: s["type"] = "integer"; break;
    case graph::param_type::floating: s["type"] = "number"; break;
    case graph::param_type::string: s["type"] = "string"; break;
    case graph::param_type::list: s["type"] = "array"; break;
    case graph::param_type::map: s["type"] = "object"; break;
    case graph::param_type::any: break;
  }
  if (!p.doc.empty()) s["description"] = p.doc;
  if (!p.choices.empty()) s["enum"] = p.choices;
  if (p.min) s["minimum"] = *p.min;
  if (p.max) s["maximum"] = *p.max;
  if (p.default_value) s["default"] = to_json(to_value(*p.default_value));
  return s;
}

bool fits(graph::param_type t, const value& v) {
  switch (t) {
    case graph::param_type::boolean: return v.is_bool();
    case graph::param_type::integer: return v.is_int() || (v.is_float() && v.as_float() == double(std::int64_t(v.as_float())));
    case graph::param_type::floating: return v.is_number();
    case graph::param_type::string: return v.is_string();
    case graph::param_type::list: return v.is_list();
    case graph::param_type::map: return v.is_map();
    case graph::param_type::any: return true;
  }
  return false;
}

}  // namespace

ojson params_schema(const std::vector<graph::param_spec>& params) {
  ojson s{{"type", "object"}, {"properties", ojson::object()}};
  auto required = ojson::array();
  for (const auto& p : params) {
    s["properties"][p.name] = param_schema(p);
    if (p.required) required.push_back(p.name);
  }
  if (!required.empty()) s["required"] = required;
  return s;
}

ojson tool_schema(const std::string& name, const graph::call_spec& call) {
  return ojson{{"type", "function"},
               {"function", {{"name", name}, {"description", call.doc}, {"parameters", params_schema(call.arguments)}}}};
}

value check_call_request(const graph::call_spec& call, const value& request) {
  if (!request.is_map())
    throw std::invalid_argument(fmt::format("the arguments must be an object, found {}", request.type_name()));
  for (const auto& [k, v] : request.as_map()) {
    bool known = false;
    for (const auto& p : call.arguments) known = known || p.name == k;
    if (!known) {
      std::string names;
      for (const auto& p : call.arguments) names += (names.empty() ? "" : ", ") + p.name;
      throw std::invalid_argument(fmt::format("unknown argument `{}`; the arguments are: {}", k, names));
    }
  }
  value_map out;
  for (const auto& p : call.arguments) {
    const value* v = request.find(p.name);
    if (!v || v->is_null()) {
      if (p.required) throw std::invalid_argument(fmt::format("missing argument `{}`", p.name));
      if (p.default_value) out.emplace_back(p.name, to_value(*p.default_value));
      continue;
    }
    if (!fits(p.type, *v))
      throw std::invalid_argument(fmt::format("argument `{}`: expected {}, found {}", p.name,
                                              graph::param_type_name(p.type), v->type_name()));
    value arg = p.type == graph::param_type::integer && v->is_float() ? value{std::int64_t(v->as_float())}
              : p.type == graph::param_type::floating && v->is_int() ? value{v->as_float()}
                                                                     : *v;
    if (p.min && arg.is_number() && arg.as_float() < *p.min)
      throw std::invalid_argument(fmt::format("argument `{}`: {} is below the minimum {:g}", p.name, arg.as_float(), *p.min));
    if (p.max && arg.is_number() && arg.as_float() > *p.max)
      throw std::invalid_argument(fmt::format("argument `{}`: {} is above the maximum {:g}", p.name, arg.as_float(), *p.max));
    if (!p.choices.empty() && arg.is_string() &&
        std::find(p.choices.begin(), p.choices.end(), arg.as_string()) == p.choices.end())
      throw std::invalid_argument(fmt::format("argument `{}`: `{}` is not one of: {}", p.name, arg.as_string(),
                                              fmt::join(p.choices, ", ")));
    out.emplace_back(p.name, std::move(arg));
  }
  return value{std::move(out)};
}

}  // namespace loom
