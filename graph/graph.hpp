// graph/graph.hpp: the graph model, pure data. A graph is nodes (actor instances of a registered kind, with
// params, resources and placement) and edges (node.port -> node.port, each bounded by a capacity).
// The YAML loader and the C++ builder both produce this value; validate() checks it whatever made it.
// No CAF, ZeroMQ or CUDA here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loom/graph/config.hpp"
#include "loom/graph/location.hpp"

namespace loom::graph {

// Default capacity of an edge, in messages, when neither the edge nor `defaults.capacity` says.
inline constexpr std::int64_t default_edge_capacity = 256;

// What a node asks of the host it is placed on. Memory sizes are in bytes.
struct resources {
  double cpus = 0;
  std::uint64_t memory = 0;
  int gpus = 0;
  std::uint64_t gpu_memory = 0;  // per GPU
  location where;
  friend bool operator==(const resources& a, const resources& b) {
    return a.cpus == b.cpus && a.memory == b.memory && a.gpus == b.gpus && a.gpu_memory == b.gpu_memory;
  }
};

// Where a node may run: a named host and/or hosts with these labels.
struct placement {
  std::optional<std::string> host;
  std::vector<std::pair<std::string, std::string>> labels;
  location where;
  friend bool operator==(const placement& a, const placement& b) {
    return a.host == b.host && a.labels == b.labels;
  }
};

struct node {
  std::string name;
  std::string kind;
  config params = config_map{};  // always a map
  resources res;
  placement place;
  std::vector<std::string> colocate;  // nodes that must share this node's host
  std::optional<std::string> spread;  // instances of one spread group never share a host
  // `spread: {group: G, strict: true}`: the group holds in recovery too (a replica moving off a lost host
  // fails the run rather than share a host with its group); not strict (the default), it yields there.
  bool spread_strict = false;
  int replicas = 1;
  int restarts = 0;                   // restarts allowed after a failure before the run fails
  // `recover: replace`: when its host is lost mid-run, this (stateless) node's instances move to a
  // surviving host and the run goes on exactly (docs/cluster.md); `fail` (the default): the run fails.
  bool replace = false;
  std::vector<std::string> tools;     // tool nodes this node may call (agents)
  location where;                     // the node's name in the source
  std::map<std::string, location> fields;  // where each field (kind, params, ...) was written

  // The location of a field if written, else the node's own.
  const location& field_where(const std::string& field) const;
  friend bool operator==(const node& a, const node& b);
};

struct port_ref {
  std::string node;
  std::string port;  // empty: the kind's default port (`out` for a source side, `in` for a target side)
  location where;
  std::string str() const { return port.empty() ? node : node + "." + port; }
  friend bool operator==(const port_ref& a, const port_ref& b) { return a.node == b.node && a.port == b.port; }
};

struct edge {
  port_ref from;
  port_ref to;
  std::optional<std::int64_t> capacity;  // messages in flight on this edge; unset: the graph's default
  location where;
  friend bool operator==(const edge& a, const edge& b) {
    return a.from == b.from && a.to == b.to && a.capacity == b.capacity;
  }
};

struct graph {
  std::string name;
  std::string description;
  std::vector<node> nodes;
  std::vector<edge> edges;
  std::int64_t default_capacity = default_edge_capacity;
  location where;  // the file itself
  // The folder that relative path params (a file source's path, a retriever's corpus) resolve against:
  // the graph file's folder for a loaded file; empty (the working folder) for a graph built in C++.
  std::string base_dir;

  const node* find(std::string_view name) const;
  node* find(std::string_view name);
  std::int64_t capacity_of(const edge& e) const { return e.capacity.value_or(default_capacity); }
  friend bool operator==(const graph& a, const graph& b);
};

}  // namespace loom::graph
