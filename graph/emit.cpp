// graph/emit.cpp: graph -> YAML with yaml-cpp's emitter. Strings are always quoted, so none reads back as
// a number, a bool or null.
#include "loom/graph/emit.hpp"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include <cmath>

namespace loom::graph {
namespace {

// A float that reads back as a float: always with a `.` or an exponent (20.0, not 20).
std::string float_text(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  auto s = fmt::format("{:.17g}", d);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

void emit(YAML::Emitter& out, const config& c) {
  switch (c.kind()) {
    case config::type::null: out << YAML::Null; break;
    case config::type::boolean: out << c.as_bool(); break;
    case config::type::integer: out << c.as_int(); break;
    case config::type::floating: {
      out << float_text(c.as_float());
      break;
    }
    case config::type::string: out << YAML::DoubleQuoted << c.as_string(); break;
    case config::type::list:
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& e : c.as_list()) emit(out, e);
      out << YAML::EndSeq;
      break;
    case config::type::map:
      out << YAML::Flow << YAML::BeginMap;
      for (const auto& [k, v] : c.as_map()) {
        out << YAML::Key << YAML::DoubleQuoted << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}

void emit_node(YAML::Emitter& out, const node& n) {
  out << YAML::Key << n.name << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << YAML::DoubleQuoted << n.kind;
  if (!n.params.as_map().empty()) {
    out << YAML::Key << "params" << YAML::Value;
    emit(out, n.params);
  }
  if (!(n.res == resources{})) {
    out << YAML::Key << "resources" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "cpus" << YAML::Value << YAML::Precision(17) << n.res.cpus;
    out << YAML::Key << "memory" << YAML::Value << n.res.memory;
    out << YAML::Key << "gpus" << YAML::Value << n.res.gpus;
    out << YAML::Key << "gpu_memory" << YAML::Value << n.res.gpu_memory;
    out << YAML::EndMap;
  }
  if (n.place.host || !n.place.labels.empty()) {
    out << YAML::Key << "placement" << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (n.place.host) out << YAML::Key << "host" << YAML::Value << YAML::DoubleQuoted << *n.place.host;
    if (!n.place.labels.empty()) {
      out << YAML::Key << "labels" << YAML::Value << YAML::Flow << YAML::BeginMap;
      for (const auto& [k, v] : n.place.labels) out << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  auto names = [&](const char* key, const std::vector<std::string>& v) {
    if (v.empty()) return;
    out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& s : v) out << s;
    out << YAML::EndSeq;
  };
  names("colocate", n.colocate);
  if (n.spread && n.spread_strict)
    out << YAML::Key << "spread" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "group" << YAML::Value
        << YAML::DoubleQuoted << *n.spread << YAML::Key << "strict" << YAML::Value << true << YAML::EndMap;
  else if (n.spread)
    out << YAML::Key << "spread" << YAML::Value << YAML::DoubleQuoted << *n.spread;
  if (n.replicas != 1) out << YAML::Key << "replicas" << YAML::Value << n.replicas;
  if (n.restarts != 0) out << YAML::Key << "restarts" << YAML::Value << n.restarts;
  if (n.replace) out << YAML::Key << "recover" << YAML::Value << "replace";
  names("tools", n.tools);
  out << YAML::EndMap;
}

}  // namespace

std::string to_yaml(const graph& g) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "graph" << YAML::Value << YAML::DoubleQuoted << g.name;
  if (!g.description.empty()) out << YAML::Key << "description" << YAML::Value << YAML::DoubleQuoted << g.description;
  out << YAML::Key << "defaults" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "capacity"
      << YAML::Value << g.default_capacity << YAML::EndMap;
  out << YAML::Key << "nodes" << YAML::Value << YAML::BeginMap;
  for (const auto& n : g.nodes) emit_node(out, n);
  out << YAML::EndMap;
  out << YAML::Key << "edges" << YAML::Value << YAML::BeginSeq;
  for (const auto& e : g.edges) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "from" << YAML::Value << e.from.str();
    out << YAML::Key << "to" << YAML::Value << e.to.str();
    if (e.capacity) out << YAML::Key << "capacity" << YAML::Value << *e.capacity;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace loom::graph
