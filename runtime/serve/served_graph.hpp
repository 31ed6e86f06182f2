// runtime/serve/served_graph.hpp: a graph made ready to answer requests. Its input node (the one source,
// or --input) becomes a source.value that emits the request's text once, keeping its outgoing edges; its
// output node (the one sink, or --output) becomes a serve.capture that hands each value to the request.
// The rewritten graph is validated once at start-up; each request then gets its own copy to run.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "graph/graph.hpp"
#include "runtime/registry.hpp"

namespace loom::serve {

// A graph that cannot be served as asked: the message names the candidates or the offending edge.
struct setup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct endpoints {
  std::string input;   // empty: the graph's only source node
  std::string output;  // empty: the graph's only sink node
};

class served_graph {
 public:
  // `g` is validated with defaults applied; `kinds` must know source.value and serve.capture.
  // Throws setup_error.
  served_graph(const graph::graph& g, const registry& kinds, const endpoints& choice);

  const std::string& name() const { return template_.name; }
  const std::string& input() const { return template_.nodes[input_].name; }
  const std::string& output() const { return template_.nodes[output_].name; }

  // The graph one request runs: the input emits `prompt` once; the output captures into channel `request`.
  graph::graph instantiate(const std::string& prompt, std::int64_t request) const;

 private:
  graph::graph template_;
  std::size_t input_ = 0, output_ = 0;
};

}  // namespace loom::serve
