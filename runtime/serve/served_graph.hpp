// runtime/serve/served_graph.hpp: a graph made ready to answer requests. Its input node (the one source,
// or --input) becomes a serve.input that emits the request's text once, keeping its outgoing edges; its
// output node (the one sink, or --output) becomes a serve.capture (serve.capture_stream for streamed
// answers) that hands each value to the request. Both name a server slot (runtime/serve/capture.hpp).
// The rewritten graph is validated once at start-up; the server expands one copy per slot and reuses it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "loom/graph/graph.hpp"
#include "loom/runtime/registry.hpp"

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
  // `g` is validated with defaults applied; `kinds` must know serve.input and both captures.
  // Throws setup_error.
  served_graph(const graph::graph& g, const registry& kinds, const endpoints& choice);

  const std::string& name() const { return template_.name; }
  const std::string& input() const { return template_.nodes[input_].name; }
  const std::string& output() const { return template_.nodes[output_].name; }

  // The graph the requests of slot `slot` run: the input emits the slot's prompt once; the output captures
  // into the slot's channel, with serve.capture_stream when `stream`.
  graph::graph instantiate(std::size_t slot, bool stream) const;

 private:
  graph::graph template_;
  std::size_t input_ = 0, output_ = 0;
};

}  // namespace loom::serve
