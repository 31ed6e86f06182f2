// The YAML loader reads every field of the format with its location, and reports shape errors in one pass.
#include <doctest/doctest.h>

#include "loom/graph/emit.hpp"
#include "test_support.hpp"

using namespace loom::graph;
using loom::graph::testing::check_text;

namespace {

graph load_ok(const std::string& text, const std::string& file = "t.yaml") {
  diagnostics diags;
  auto g = load_graph_text(text, file, diags);
  INFO(diags.str());
  REQUIRE(g.has_value());
  CHECK_FALSE(diags.has_errors());
  return *g;
}

}  // namespace

TEST_CASE("a node's fields are all read") {
  graph g = load_ok(R"(graph: full
description: every field
defaults: {capacity: 8}
nodes:
  src:
    kind: source.sequence
    params: {count: 5, start: -2, label: "10", ratio: 1.5, on: true, none: ~}
    resources: {cpus: 2, memory: 512MiB, gpus: 1, gpu_memory: 1.5GB}
    placement: {host: a, labels: {zone: paris}}
    colocate: out
    spread: group1
    replicas: 3
    restarts: 2
    tools: [out]
  out:
    kind: sink.count
    colocate: [src]
edges:
  - src -> out
)");
  CHECK(g.name == "full");
  CHECK(g.description == "every field");
  CHECK(g.default_capacity == 8);
  REQUIRE(g.nodes.size() == 2);
  const node& n = g.nodes[0];
  CHECK(n.kind == "source.sequence");
  CHECK(n.params.find("count")->as_int() == 5);
  CHECK(n.params.find("start")->as_int() == -2);
  CHECK(n.params.find("label")->is_string());
  CHECK(n.params.find("ratio")->as_float() == 1.5);
  CHECK(n.params.find("on")->as_bool());
  CHECK(n.params.find("none")->is_null());
  CHECK(n.res.cpus == 2);
  CHECK(n.res.memory == 512ULL * 1024 * 1024);
  CHECK(n.res.gpus == 1);
  CHECK(n.res.gpu_memory == 1'500'000'000ULL);
  CHECK(n.place.host == "a");
  CHECK(n.place.labels == std::vector<std::pair<std::string, std::string>>{{"zone", "paris"}});
  CHECK(n.colocate == std::vector<std::string>{"out"});
  CHECK(n.spread == "group1");
  CHECK(n.replicas == 3);
  CHECK(n.restarts == 2);
  CHECK(n.tools == std::vector<std::string>{"out"});
  CHECK(g.nodes[1].colocate == std::vector<std::string>{"src"});
}

TEST_CASE("spread is a group name, or a map with the group and strict; strict survives to_yaml") {
  graph g = load_ok("nodes:\n  a: {kind: sink.count, spread: w}\n"
                    "  b: {kind: sink.count, spread: {group: w, strict: true}}\n"
                    "  c: {kind: sink.count, spread: {group: w, strict: false}}\n");
  CHECK(g.nodes[0].spread == "w");
  CHECK_FALSE(g.nodes[0].spread_strict);
  CHECK(g.nodes[1].spread == "w");
  CHECK(g.nodes[1].spread_strict);
  CHECK(g.nodes[2].spread == "w");
  CHECK_FALSE(g.nodes[2].spread_strict);
  graph back = load_ok(to_yaml(g));
  CHECK(back.nodes[1].spread_strict);
  CHECK_FALSE(back.nodes[0].spread_strict);
  CHECK(back == g);
  auto bad = check_text("nodes:\n  a: {kind: sink.count, spread: {strict: true}}\n");
  CHECK(bad.find("t.yaml:2:33: error: `spread` of node `a` has no `group`") != std::string::npos);
  bad = check_text("nodes:\n  a: {kind: sink.count, spread: {group: w, strict: yes}}\n");
  CHECK(bad.find("`spread.strict` of node `a` must be `true` or `false`, found `yes`") != std::string::npos);
  bad = check_text("nodes:\n  a: {kind: sink.count, spread: {group: w, strcit: true}}\n");
  CHECK(bad.find("unknown spread field `strcit`") != std::string::npos);
}

TEST_CASE("locations point at names, fields and params") {
  graph g = load_ok("nodes:\n  src:\n    kind: source.sequence\n    params: {count: 5}\n  out: {kind: sink.count}\n"
                    "edges: [src -> out]\n");
  const node& src = g.nodes[0];
  CHECK(src.where.str() == "t.yaml:2:3");
  CHECK(src.field_where("kind").str() == "t.yaml:3:11");
  CHECK(src.params.find("count")->where().str() == "t.yaml:4:21");
  CHECK(src.field_where("replicas").str() == "t.yaml:2:3");  // not written: the node's own
}

TEST_CASE("the graph name defaults to the file stem") {
  CHECK(load_ok("nodes: {}\n", "dir/pipeline.yaml").name == "pipeline");
}

TEST_CASE("sizes accept bytes and 1024- and 1000-based units") {
  auto memory_of = [](const std::string& size) {
    return load_ok("nodes:\n  a: {kind: sink.count, resources: {memory: " + size + "}}\n").nodes[0].res.memory;
  };
  CHECK(memory_of("123") == 123);
  CHECK(memory_of("4KiB") == 4096);
  CHECK(memory_of("64GiB") == 64ULL << 30);
  CHECK(memory_of("1TiB") == 1ULL << 40);
  CHECK(memory_of("1.5GB") == 1'500'000'000ULL);
  CHECK(memory_of("2MB") == 2'000'000ULL);
  CHECK(memory_of("\"512MiB\"") == 512ULL << 20);
  CHECK(check_text("nodes:\n  a: {kind: sink.count, resources: {memory: 12XB}}\n").find("t.yaml:2:45: error: "
                   "`resources.memory` of node `a`: `12XB` is not a size") != std::string::npos);
  CHECK(check_text("nodes:\n  a: {kind: sink.count, resources: {memory: -5}}\n").find("-5` is not a size") !=
        std::string::npos);
}

TEST_CASE("unknown keys at every level are errors with a did-you-mean hint") {
  std::string out = check_text("grap: x\nnodes:\n  a:\n    kind: sink.count\n    resources: {cpu: 1}\n"
                               "    placement: {hots: a}\n");
  CHECK(out.find("t.yaml:1:1: error: unknown top-level key `grap`\n  hint: did you mean `graph`?") != std::string::npos);
  CHECK(out.find("t.yaml:5:17: error: unknown resource `cpu` in node `a`\n  hint: did you mean `cpus`?") !=
        std::string::npos);
  CHECK(out.find("t.yaml:6:17: error: unknown placement field `hots`") != std::string::npos);
}

TEST_CASE("duplicate keys are errors at the second with the first's line") {
  std::string out = check_text("nodes:\n  a:\n    kind: source.sequence\n    params:\n      count: 1\n      count: 2\n");
  CHECK(out.find("t.yaml:6:7: error: duplicate key `count`") != std::string::npos);
  CHECK(out.find("first written at line 5") != std::string::npos);
  std::string nodes = check_text("nodes:\n  a: {kind: sink.count}\n  a: {kind: sink.count}\n");
  CHECK(nodes.find("t.yaml:3:3: error: duplicate node name `a`\n  hint: `a` is first defined at line 2") !=
        std::string::npos);
}

TEST_CASE("node names with dots or bad characters are errors") {
  std::string out = check_text("nodes:\n  a.b: {kind: sink.count}\n  9x: {kind: sink.count}\n  ok-1_x: {kind: sink.count}\n");
  CHECK(out.find("t.yaml:2:3: error: `a.b` is not a valid node name") != std::string::npos);
  CHECK(out.find("t.yaml:3:3: error: `9x` is not a valid node name") != std::string::npos);
  CHECK(out.find("ok-1_x` is not") == std::string::npos);
}

TEST_CASE("a file without nodes, or whose top level is not a map, is an error") {
  CHECK(check_text("graph: x\n").find("t.yaml:1:1: error: the graph has no `nodes`") != std::string::npos);
  CHECK(check_text("- a\n- b\n").find("t.yaml:1:1: error: the top level of a graph file must be a map") !=
        std::string::npos);
  CHECK(check_text("# only a comment\n").find("error: the top level") != std::string::npos);
}

TEST_CASE("every error of a file is reported in one pass") {
  std::string out = check_text(R"(nodes:
  a: {kind: source.sequence, replicas: x}
  b: {kind: sink.count, knd: y}
  c: {kind: sink.count, restarts: [1]}
  d: {kind: nope}
edges:
  - a -> b
  - a -> c
  - a -> d
  - a ->
)");
  CHECK(out.find("t.yaml:2:40: error: `replicas` of node `a` must be an integer, found `x`") != std::string::npos);
  CHECK(out.find("t.yaml:3:25: error: unknown field `knd` in node `b`") != std::string::npos);
  CHECK(out.find("t.yaml:4:35: error: `restarts` of node `c` must be an integer, found a list") != std::string::npos);
  CHECK(out.find("t.yaml:5:13: error: unknown kind `nope`") != std::string::npos);
  CHECK(out.find("t.yaml:10:9: error: bad edge `a ->`") != std::string::npos);
}

TEST_CASE("quoted scalars stay strings; plain ones resolve") {
  graph g = load_ok("nodes:\n  a:\n    kind: source.value\n    params: {a: \"true\", b: '5', c: 0x10, d: 1e3, e: .inf, "
                    "f: [1, two], g: {x: null}}\n");
  const config& p = g.nodes[0].params;
  CHECK(p.find("a")->as_string() == "true");
  CHECK(p.find("b")->as_string() == "5");
  CHECK(p.find("c")->as_int() == 16);
  CHECK(p.find("d")->as_float() == 1000.0);
  CHECK(p.find("e")->as_float() > 1e308);
  CHECK(p.find("f")->str() == "[1, two]");
  CHECK(p.find("g")->str() == "{x: null}");
}
