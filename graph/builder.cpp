// graph/builder.cpp: the C++ builder; every element is located at the builder call that made it.
#include "loom/graph/builder.hpp"

#include <memory>

#include "loom/graph/detail/edge_syntax.hpp"

namespace loom::graph {

namespace {

location at(const call_site& where) {
  return location{std::make_shared<const std::string>(where.file), where.line, where.column};
}

// "node" or "node.port"; text that is neither stays whole as the node name, for validate() to report.
port_ref endpoint(std::string_view text, const location& where) {
  auto parsed = parse_endpoint_text(text);
  if (auto* e = std::get_if<endpoint_text>(&parsed)) return port_ref{e->node, e->port, where};
  return port_ref{std::string(text), {}, where};
}

}  // namespace

node& node_builder::get() { return b_->g_.nodes[index_]; }

node_builder& node_builder::param(std::string key, config value) {
  get().params.set(std::move(key), std::move(value));
  return *this;
}

node_builder& node_builder::cpus(double n) {
  get().res.cpus = n;
  return *this;
}

node_builder& node_builder::memory(std::uint64_t bytes) {
  get().res.memory = bytes;
  return *this;
}

node_builder& node_builder::gpus(int n, std::uint64_t memory_per_gpu) {
  get().res.gpus = n;
  get().res.gpu_memory = memory_per_gpu;
  return *this;
}

node_builder& node_builder::on_host(std::string host) {
  get().place.host = std::move(host);
  return *this;
}

node_builder& node_builder::label(std::string key, std::string value) {
  get().place.labels.emplace_back(std::move(key), std::move(value));
  return *this;
}

node_builder& node_builder::colocate(std::string other) {
  get().colocate.push_back(std::move(other));
  return *this;
}

node_builder& node_builder::spread(std::string group, bool strict) {
  get().spread = std::move(group);
  get().spread_strict = strict;
  return *this;
}

node_builder& node_builder::replicas(int n) {
  get().replicas = n;
  return *this;
}

node_builder& node_builder::restarts(int n) {
  get().restarts = n;
  return *this;
}

node_builder& node_builder::tool(std::string tool_node) {
  get().tools.push_back(std::move(tool_node));
  return *this;
}

builder::builder(std::string name, call_site where) {
  g_.name = std::move(name);
  g_.where = at(where);
}

builder& builder::description(std::string text) {
  g_.description = std::move(text);
  return *this;
}

builder& builder::base_dir(std::string dir) {
  g_.base_dir = std::move(dir);
  return *this;
}

builder& builder::default_capacity(std::int64_t capacity) {
  g_.default_capacity = capacity;
  return *this;
}

node_builder builder::node(std::string name, std::string kind, call_site where) {
  ::loom::graph::node n;
  n.name = std::move(name);
  n.kind = std::move(kind);
  n.where = at(where);
  n.fields["kind"] = n.where;
  g_.nodes.push_back(std::move(n));
  return node_builder(*this, g_.nodes.size() - 1);
}

builder& builder::edge(std::string_view from, std::string_view to, std::optional<std::int64_t> capacity,
                       call_site where) {
  location loc = at(where);
  g_.edges.push_back(::loom::graph::edge{endpoint(from, loc), endpoint(to, loc), capacity, loc});
  return *this;
}

builder& builder::chain(std::initializer_list<std::string_view> endpoints, call_site where) {
  const std::string_view* prev = nullptr;
  for (const auto& e : endpoints) {
    if (prev != nullptr) edge(*prev, e, std::nullopt, where);
    prev = &e;
  }
  return *this;
}

}  // namespace loom::graph
