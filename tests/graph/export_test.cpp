// DOT and Mermaid renderings of a graph.
#include <doctest/doctest.h>

#include "loom/graph/builder.hpp"
#include "loom/graph/export.hpp"

using namespace loom::graph;

namespace {

graph small() {
  builder b("demo \"q\"");
  b.node("src", "source.sequence");
  b.node("end", "sink.count");
  b.node("my-node", "flow.forward");
  b.edge("src", "my-node");
  b.edge("my-node.out", "end.in", 4);
  return b.build();
}

}  // namespace

TEST_CASE("to_dot renders nodes with their kind and edges with their ports") {
  CHECK(to_dot(small()) ==
        "digraph \"demo \\\"q\\\"\" {\n"
        "  rankdir=LR;\n"
        "  node [shape=box];\n"
        "  \"src\" [label=\"src\\nsource.sequence\"];\n"
        "  \"end\" [label=\"end\\nsink.count\"];\n"
        "  \"my-node\" [label=\"my-node\\nflow.forward\"];\n"
        "  \"src\" -> \"my-node\" [label=\"out→in\"];\n"
        "  \"my-node\" -> \"end\" [label=\"out→in (capacity 4)\"];\n"
        "}\n");
}

TEST_CASE("to_mermaid renders a flowchart with safe ids") {
  CHECK(to_mermaid(small()) ==
        "flowchart LR\n"
        "  n_src[\"src<br/>source.sequence\"]\n"
        "  n_end[\"end<br/>sink.count\"]\n"
        "  n_my_dnode[\"my-node<br/>flow.forward\"]\n"
        "  n_src -->|\"out→in\"| n_my_dnode\n"
        "  n_my_dnode -->|\"out→in (capacity 4)\"| n_end\n");
}
