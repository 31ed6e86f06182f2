// runtime/registry.cpp: the kinds a process knows.
#include "loom/runtime/registry.hpp"

#include <fmt/format.h>

#include <set>
#include <stdexcept>

namespace loom {
namespace {

void check_spec(const graph::kind_spec& s) {
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument(fmt::format("kind '{}': {}", s.name, why));
  };
  if (s.name.empty()) throw std::invalid_argument("a kind needs a name");
  if (s.doc.empty()) bad("needs a one-line doc");
  std::set<std::string> seen;
  for (const auto& p : s.inputs)
    if (!seen.insert("in:" + p.name).second) bad("input port '" + p.name + "' declared twice");
  for (const auto& p : s.outputs)
    if (!seen.insert("out:" + p.name).second) bad("output port '" + p.name + "' declared twice");
  for (const auto& p : s.params)
    if (!seen.insert("param:" + p.name).second) bad("param '" + p.name + "' declared twice");
}

}  // namespace

void registry::add(kind_def def) {
  check_spec(def.spec);
  // Every tool bounds the calls it holds: beyond max_pending a caller gets "tool busy" at once.
  if (def.spec.call && !def.spec.find_param("max_pending"))
    def.spec.params.push_back(graph::param_spec::integer("max_pending", "calls this tool holds at most, queued and "
                                                         "running; beyond it a caller gets a `tool busy` error")
                                  .def(64)
                                  .at_least(1));
  if (!def.make) throw std::invalid_argument(fmt::format("kind '{}': no factory", def.spec.name));
  auto name = def.spec.name;
  if (!kinds_.emplace(name, std::move(def)).second)
    throw std::invalid_argument(fmt::format("kind '{}' is already registered", name));
}

void registry::replace(kind_def def) {
  if (auto it = kinds_.find(def.spec.name); it != kinds_.end()) kinds_.erase(it);
  add(std::move(def));
}

const kind_def* registry::find(std::string_view name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : &it->second;
}

const graph::kind_spec* registry::find_kind(std::string_view name) const {
  auto* d = find(name);
  return d ? &d->spec : nullptr;
}

std::vector<std::string> registry::kind_names() const {
  std::vector<std::string> out;
  out.reserve(kinds_.size());
  for (const auto& [name, def] : kinds_) out.push_back(name);
  return out;
}

}  // namespace loom
