// The C++ builder makes the same graph as its YAML twin, located at the builder calls.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <filesystem>

#include "loom/graph/builder.hpp"
#include "loom/graph/emit.hpp"
#include "loom/graph/load.hpp"
#include "test_support.hpp"

using namespace loom::graph;

TEST_CASE("a builder graph equals its YAML twin") {
  builder b("pipeline");
  b.description("numbers through a batcher");
  b.default_capacity(32);
  b.node("src", "source.sequence").param("count", 100).param("step", 2).cpus(1.5).memory(512ULL << 20);
  b.node("batch", "flow.batch").param("size", 8).gpus(1, 1ULL << 30).on_host("a").label("zone", "paris")
      .colocate("src").spread("g").replicas(2).restarts(3);
  b.node("agent", "flow.forward").tool("calc");
  b.node("calc", "tool.calculator");
  b.node("out", "sink.count");
  b.chain({"src", "batch.in"});
  b.edge("batch", "out");
  b.edge("batch.out", "agent", 4);
  b.edge("agent", "out");
  graph built = b.build();

  diagnostics diags;
  auto loaded = load_graph_text(R"(graph: pipeline
description: numbers through a batcher
defaults: {capacity: 32}
nodes:
  src:
    kind: source.sequence
    params: {count: 100, step: 2}
    resources: {cpus: 1.5, memory: 512MiB}
  batch:
    kind: flow.batch
    params: {size: 8}
    resources: {gpus: 1, gpu_memory: 1GiB}
    placement: {host: a, labels: {zone: paris}}
    colocate: src
    spread: g
    replicas: 2
    restarts: 3
  agent: {kind: flow.forward, tools: [calc]}
  calc: {kind: tool.calculator}
  out: {kind: sink.count}
edges:
  - src -> batch.in
  - batch -> out
  - {from: batch.out, to: agent, capacity: 4}
  - agent -> out
)", "pipeline.yaml", diags);
  INFO(diags.str());
  REQUIRE(loaded);
  CHECK(*loaded == built);
  validate(built, testing::test_catalog{}, diags);
  CHECK_FALSE(diags.has_errors());

  loaded->nodes[1].params.set("size", 9);
  CHECK_FALSE(*loaded == built);

  // A strict spread group is part of the node (and of its equality).
  builder strict("s");
  strict.node("w", "flow.forward").spread("g", true);
  graph with_strict = strict.build();
  CHECK(with_strict.nodes[0].spread_strict);
  graph twin = with_strict;
  twin.nodes[0].spread_strict = false;
  CHECK_FALSE(twin == with_strict);
}

TEST_CASE("builder elements are located at the calls that made them") {
  int line = __LINE__ + 1;
  builder b("g");
  b.node("a", "source.sequence");
  b.edge("a", "nowhere.in");
  graph g = b.build();
  CHECK(g.where.line == line);
  CHECK(g.nodes[0].where.line == line + 1);
  CHECK(g.nodes[0].where.file->find("builder_test.cpp") != std::string::npos);
  CHECK(g.edges[0].where.line == line + 2);
  CHECK(g.edges[0].to.node == "nowhere");
  CHECK(g.edges[0].to.port == "in");
  diagnostics diags;
  validate(g, testing::test_catalog{}, diags);
  CHECK(diags.str().find(fmt::format("builder_test.cpp:{}:", line + 2)) != std::string::npos);
}

TEST_CASE("validate catches builder-only mistakes: duplicate and invalid names") {
  builder b("g");
  b.node("a", "source.sequence");
  b.node("a", "source.sequence");
  b.node("b.c", "sink.count");
  diagnostics diags;
  validate(b.build(), testing::test_catalog{}, diags);
  CHECK(diags.str().find("duplicate node name `a`") != std::string::npos);
  CHECK(diags.str().find("`b.c` is not a valid node name") != std::string::npos);
}

TEST_CASE("a graph written back as YAML reads back equal, for every config in configs/") {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(LOOM_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    diagnostics d;
    auto g = load_graph_file(entry.path().string(), d);
    INFO(entry.path(), "\n", d.str());
    REQUIRE(g);
    auto text = to_yaml(*g);
    diagnostics d2;
    auto back = load_graph_text(text, "emitted.yaml", d2);
    INFO(text, "\n", d2.str());
    REQUIRE(back);
    CHECK(*back == *g);
  }
}

TEST_CASE("emitted YAML keeps floats as floats and strings as strings") {
  builder b("types");
  b.node("a", "source.value").param("value", config_map{{"f", 20.0}, {"s", "true"}, {"n", "12"}, {"i", 3}});
  b.node("out", "sink.count");
  b.edge("a", "out");
  auto g = b.build();
  diagnostics d;
  auto back = load_graph_text(to_yaml(g), "types.yaml", d);
  REQUIRE(back);
  CHECK(*back == g);
}
