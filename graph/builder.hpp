// graph/builder.hpp: the C++ builder. It produces the same graph::graph value as the YAML loader, with
// each element's location set to the C++ call that made it. Verbs: node(), param(), edge(), chain().
//
//   loom::graph::builder b("pipeline");
//   b.node("src", "source.sequence").param("count", 100);
//   b.node("fwd", "flow.forward");
//   b.node("out", "sink.count");
//   b.chain({"src", "fwd", "out"});
//   loom::graph::graph g = b.build();
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

#include "loom/graph/graph.hpp"

namespace loom::graph {

// Where a builder call was written: std::source_location where the library has it, else the compiler's
// builtins without a column (clang 14 with libstdc++ 12, the fuzz build, has no std::source_location).
struct call_site {
  const char* file;
  int line;
  int column;
#if defined(__cpp_lib_source_location)
  static constexpr call_site current(std::source_location l = std::source_location::current()) {
    return {l.file_name(), static_cast<int>(l.line()), static_cast<int>(l.column())};
  }
#else
  static constexpr call_site current(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return {file, line, 0};
  }
#endif
};

class builder;

// A handle to one node while it is being built; valid until the next node() call.
class node_builder {
 public:
  node_builder& param(std::string key, config value);
  node_builder& cpus(double n);
  node_builder& memory(std::uint64_t bytes);
  node_builder& gpus(int n, std::uint64_t memory_per_gpu = 0);
  node_builder& on_host(std::string host);
  node_builder& label(std::string key, std::string value);
  node_builder& colocate(std::string other);
  node_builder& spread(std::string group, bool strict = false);  // strict: holds in recovery too
  node_builder& replicas(int n);
  node_builder& restarts(int n);
  node_builder& tool(std::string tool_node);

 private:
  friend class builder;
  node_builder(builder& b, std::size_t index) : b_(&b), index_(index) {}
  node& get();
  builder* b_;
  std::size_t index_;
};

class builder {
 public:
  explicit builder(std::string name, call_site where = call_site::current());

  builder& description(std::string text);
  builder& default_capacity(std::int64_t capacity);
  // The folder relative path params resolve against (as a graph file's own folder does); unset: the
  // working folder.
  builder& base_dir(std::string dir);

  // Adds a node of a registered kind.
  node_builder node(std::string name, std::string kind,
                    call_site where = call_site::current());
  // Adds an edge; `from` and `to` are "node" or "node.port".
  builder& edge(std::string_view from, std::string_view to, std::optional<std::int64_t> capacity = {},
                call_site where = call_site::current());
  // Adds an edge between each consecutive pair of endpoints.
  builder& chain(std::initializer_list<std::string_view> endpoints,
                 call_site where = call_site::current());

  // The graph built so far (validate it with graph::validate()).
  graph build() const { return g_; }

 private:
  friend class node_builder;
  graph g_;
};

}  // namespace loom::graph
