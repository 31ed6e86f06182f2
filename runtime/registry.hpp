// runtime/registry.hpp: the actor kinds a process knows: each a kind_spec (what it declares) and a factory
// (how to make an instance). Built-in kinds register through actors::register_builtins(registry&); a user
// library registers its own from `extern "C" void loom_register(loom::registry&)`, loaded with --plugin.
// No static-init registration: main() builds the registry and passes it down.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "loom/graph/kind_spec.hpp"
#include "loom/runtime/node.hpp"
#include "loom/runtime/params.hpp"

namespace loom {

// What a factory gets to build one instance of a node.
struct node_init {
  std::string name;  // the node's name in the graph
  int instance = 0;
  int replicas = 1;
  loom::params params;   // validated, defaults filled
  std::size_t outputs = 0;  // the node's output port count (router: from its params)
  // Where the plan put this instance: a GPU index on its host, -1 for the CPU, or `unplanned` (a local run
  // with no plan: a kernel picks a GPU itself).
  static constexpr int unplanned = -2;
  int device = unplanned;
  // 0 for the first instance; n for the n-th restart after a failure. `restored` is the last value the
  // failed instance passed to ctx.checkpoint() (null if none).
  int attempt = 0;
  value restored;
};

using node_factory = std::function<std::unique_ptr<node>(const node_init&)>;

struct kind_def {
  graph::kind_spec spec;
  node_factory make;
};

class registry final : public graph::kind_catalog {
 public:
  // Adds a kind; throws std::invalid_argument when the name is taken or the spec is malformed.
  void add(kind_def def);
  // Adds a kind, or replaces the one of the same name (a program binding a kind to one run).
  void replace(kind_def def);
  const kind_def* find(std::string_view name) const;

  const graph::kind_spec* find_kind(std::string_view name) const override;
  std::vector<std::string> kind_names() const override;

 private:
  std::map<std::string, kind_def, std::less<>> kinds_;
};

// Loads a plugin library and calls its `loom_register(registry&)`. Throws std::runtime_error naming the
// path and the dlopen/dlsym error.
void load_plugin(registry& r, const std::string& path);

}  // namespace loom
