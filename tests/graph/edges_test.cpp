// Edge strings: single edges, ports, chains and lists; the long form; syntax errors with their column.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "test_support.hpp"

using namespace loom::graph;
using loom::graph::testing::check_text;

namespace {

const char* nodes = "nodes:\n  a: {kind: source.sequence}\n  b: {kind: flow.forward}\n  c: {kind: sink.count}\n";

std::vector<std::string> edges_of(const std::string& edges_yaml) {
  diagnostics diags;
  auto g = load_graph_text(std::string(nodes) + "edges:\n" + edges_yaml, "t.yaml", diags);
  INFO(diags.str());
  REQUIRE(g.has_value());
  CHECK_FALSE(diags.has_errors());
  std::vector<std::string> out;
  for (const auto& e : g->edges) {
    std::string text = e.from.str();
    text += ">";
    text += e.to.str();
    if (e.capacity) text += fmt::format("/{}", *e.capacity);
    out.push_back(text);
  }
  return out;
}

using list = std::vector<std::string>;

}  // namespace

TEST_CASE("edge strings: single, ports, chains, lists and free spacing") {
  CHECK(edges_of("  - a -> b\n") == list{"a>b"});
  CHECK(edges_of("  - a.out -> b.in\n") == list{"a.out>b.in"});
  CHECK(edges_of("  - a->b->c\n") == list{"a>b", "b>c"});
  CHECK(edges_of("  - a.out -> [b, c]\n") == list{"a.out>b", "a.out>c"});
  CHECK(edges_of("  - [a, b] -> c   # fan in\n") == list{"a>c", "b>c"});
  CHECK(edges_of("  - \"[a,b]->[b.in , c]\"\n") == list{"a>b.in", "a>c", "b>b.in", "b>c"});
  CHECK(edges_of("  - a -> [b] -> c\n") == list{"a>b", "b>c"});
}

TEST_CASE("long-form edges carry a capacity") {
  CHECK(edges_of("  - {from: a.out, to: b.in, capacity: 4}\n") == list{"a.out>b.in/4"});
  CHECK(edges_of("  - from: a\n    to: c\n") == list{"a>c"});
}

TEST_CASE("edge endpoints are located at their text") {
  diagnostics diags;
  auto g = load_graph_text(std::string(nodes) + "edges:\n  - a -> b\n  - \"b ->  c\"\n  - [a, b] -> c\n", "t.yaml", diags);
  REQUIRE(g);
  CHECK(g->edges[0].from.where.str() == "t.yaml:6:5");
  CHECK(g->edges[0].to.where.str() == "t.yaml:6:10");
  CHECK(g->edges[1].to.where.str() == "t.yaml:7:12");  // one past the quote
  CHECK(g->edges[2].from.where.str() == "t.yaml:8:6");
  CHECK(g->edges[3].from.where.str() == "t.yaml:8:9");
  CHECK(g->edges[3].to.where.str() == "t.yaml:8:15");
}

TEST_CASE("edge syntax errors point into the edge text") {
  auto error_of = [](const std::string& edge) { return check_text(std::string(nodes) + "edges:\n  - " + edge + "\n"); };
  CHECK(error_of("a ->").find("t.yaml:6:9: error: bad edge `a ->`: expected a node after `->`") != std::string::npos);
  CHECK(error_of("a -> -> c").find("t.yaml:6:10: error: bad edge `a -> -> c`: expected a node after `->`") !=
        std::string::npos);
  CHECK(error_of("-> c").find("t.yaml:6:5: error: bad edge `-> c`: expected a node before `->`") != std::string::npos);
  CHECK(error_of("\"a -> [b, c\"").find("t.yaml:6:11: error: bad edge `a -> [b, c`: this `[` is never closed") !=
        std::string::npos);
  CHECK(error_of("\"a -> []\"").find("t.yaml:6:12: error: bad edge `a -> []`: an endpoint list is empty") !=
        std::string::npos);
  CHECK(error_of("a. -> b").find("t.yaml:6:7: error: bad edge `a. -> b`: expected a port name after `a.`") !=
        std::string::npos);
  CHECK(error_of("a").find("t.yaml:6:5: error: bad edge `a`: an edge needs `->`") != std::string::npos);
  CHECK(error_of("a -> b c").find("t.yaml:6:12: error: bad edge `a -> b c`: expected `->`") != std::string::npos);
  CHECK(error_of("{from: a, to: b, cap: 3}").find("t.yaml:6:22: error: unknown edge field `cap`") !=
        std::string::npos);
  CHECK(error_of("{from: a, to: b, capacity: 0}").find("t.yaml:6:32: error: edge `capacity` must be at least 1") !=
        std::string::npos);
  CHECK(error_of("{from: a}").find("t.yaml:6:5: error: an edge map needs both `from` and `to`") != std::string::npos);
}
