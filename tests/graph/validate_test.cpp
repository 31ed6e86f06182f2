// validate() checks kinds, params, ports, edges and references against the catalog; apply_defaults and
// apply_override fill and change params.
#include <doctest/doctest.h>

#include "loom/graph/builder.hpp"
#include "test_support.hpp"

using namespace loom::graph;
using loom::graph::testing::check_text;

namespace {

bool has(const std::string& out, const std::string& text) {
  INFO(out);
  return out.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("params are checked for type, range and choices") {
  std::string out = check_text(R"(nodes:
  src: {kind: source.file, params: {path: in.txt, format: csvv}}
  thr: {kind: flow.throttle, params: {rate: 0}}
  thr2: {kind: flow.throttle, params: {rate: 5}}
  blob: {kind: source.blob, params: {size: 2000000000}}
  out: {kind: sink.file, params: {path: [x]}}
edges: [src -> thr -> thr2 -> out, blob -> out]
)");
  CHECK(has(out, "t.yaml:2:59: error: param `format` of node `src` (source.file) must be one of: lines, jsonl; found `csvv`"));
  CHECK(has(out, "t.yaml:3:45: error: param `rate` of node `thr` (flow.throttle) must be at least 0.001, found 0"));
  CHECK(!has(out, "thr2"));  // an integer is a fine float
  CHECK(has(out, "t.yaml:5:44: error: param `size` of node `blob` (source.blob) must be at most 1073741824"));
  CHECK(has(out, "t.yaml:6:41: error: param `path` of node `out` (sink.file) expects string, found list `[x]`"));
}

TEST_CASE("a missing required param is reported at the node's params or the node") {
  std::string out = check_text("nodes:\n  g:\n    kind: flow.gather\n  v: {kind: source.value}\n  out: {kind: sink.count}\n"
                               "edges: [v -> g -> out]\n");
  CHECK(has(out, "t.yaml:2:3: error: node `g` (flow.gather) needs param `count`"));
  CHECK(has(out, "t.yaml:4:3: error: node `v` (source.value) needs param `value`"));
}

TEST_CASE("unknown ports list the valid ones; default ports resolve or ask for a name") {
  std::string out = check_text(R"(nodes:
  src: {kind: source.sequence}
  r: {kind: flow.router, params: {routes: {a: fast, b: slow, c: fast}}}
  f: {kind: sink.count}
  s: {kind: sink.count}
  d: {kind: sink.count}
edges:
  - src -> r.inn
  - r -> f
  - r.slow -> s
  - r.default -> d
  - r.fast -> f.in
)");
  CHECK(has(out, "t.yaml:8:12: error: node `r` (flow.router) has no input port `inn`; its inputs: in"));
  CHECK(has(out, "t.yaml:9:5: error: node `r` (flow.router) has several outputs; name one: fast, slow, default"));
  CHECK(!has(out, "r.slow"));
  CHECK(!has(out, "`f` (sink.count) has no input edge"));
}

TEST_CASE("edges cannot start at a sink or end at a source") {
  std::string out = check_text("nodes:\n  a: {kind: source.sequence}\n  b: {kind: sink.count}\nedges: [b -> a]\n");
  CHECK(has(out, "t.yaml:4:9: error: node `b` (sink.count) has no output ports, so an edge cannot start at it"));
  CHECK(has(out, "t.yaml:4:14: error: node `a` (source.sequence) has no input ports, so an edge cannot end at it"));
}

TEST_CASE("duplicate edges and cycles are errors; an unused output is a warning") {
  std::string out = check_text(R"(nodes:
  src: {kind: source.sequence}
  a: {kind: flow.forward}
  b: {kind: flow.forward}
  c: {kind: flow.forward}
  out: {kind: sink.count}
edges:
  - src -> a -> b -> c -> out
  - a.out -> b.in
  - c -> a
  - src -> c
)");
  CHECK(has(out, "t.yaml:9:5: error: duplicate edge `a.out -> b.in`"));
  CHECK(has(out, "t.yaml:10:5: error: cycle: a -> b -> c -> a\n  hint: loom graphs are acyclic"));
  std::string warn = check_text("nodes:\n  src: {kind: source.sequence}\n  f: {kind: flow.forward}\n  o: {kind: sink.count}\n"
                                "edges: [src -> o, src -> f]\n");
  CHECK(has(warn, "t.yaml:3:3: warning: node `f` (flow.forward) has no output edge"));
  CHECK(!has(warn, "error"));
  CHECK(has(check_text("nodes:\n  a: {kind: flow.forward}\nedges: [a -> a]\n"), "t.yaml:3:9: error: cycle: a -> a"));
}

TEST_CASE("an output where a value fails the run while unconnected is a warning at its node") {
  auto router = [](const std::string& params, const std::string& edges) {
    return check_text("nodes:\n  src: {kind: source.sequence}\n  r:\n    kind: flow.router\n    params: " + params +
                      "\n  a: {kind: sink.count}\n  b: {kind: sink.count}\nedges:\n  - src -> r\n  - src -> b\n  - r.x -> a\n" +
                      edges);
  };
  auto out = router("{routes: {1: x}}", "");
  CHECK(has(out, "t.yaml:3:3: warning: node `r` (flow.router): output `default` (values no route matches) is not "
                 "connected, so the first value sent there fails the run\n  hint: connect `r.default` (to a "
                 "sink.file to keep such values); or set `unmatched: fail`"));
  CHECK(!has(out, "error"));
  CHECK(!has(router("{routes: {1: x}}", "  - r.default -> b\n"), "warning"));
  CHECK(!has(router("{routes: {1: x}, unmatched: fail}", ""), "warning"));
}

TEST_CASE("an output a value is sure to reach, left unconnected, is an error at its node naming the port") {
  // A router whose routes all lead to `default` (or none): every value goes there.
  for (const char* routes : {"{}", "{1: default}"}) {
    auto out = check_text(std::string("nodes:\n  src: {kind: source.sequence}\n  r:\n    kind: flow.router\n"
                                      "    params: {routes: ") + routes + "}\nedges:\n  - src -> r\n");
    CHECK(has(out, "t.yaml:3:3: error: node `r` (flow.router): output `default` (every value: no route leads to "
                   "another output) is not connected, "
                   "and values are sure to be sent there: the run would fail at the first\n  hint: connect "
                   "`r.default` (to a sink.file to keep such values); or add routes to other outputs"));
  }
  auto kept = check_text("nodes:\n  src: {kind: source.sequence}\n  r:\n    kind: flow.router\n"
                         "    params: {routes: {}}\n  b: {kind: sink.count}\nedges:\n  - src -> r\n  - r.default -> b\n");
  CHECK(!has(kept, "error"));
  CHECK(!has(kept, "warning"));
}

TEST_CASE("a kind's own check runs once its params have their types, and reports where it points") {
  struct catalog : kind_catalog {
    kind_spec k;
    catalog() {
      k.name = "test.checked";
      k.outputs = {{"out", ""}};
      k.params = {param_spec::list("rules", "")};
      k.check = [](const graph& g, const node& n, const kind_catalog&, diagnostics& d) {
        for (const auto& r : n.params.find("rules")->as_list())
          if (r.is_string() && r.as_string() == "bad") d.error(r.where(), "rule `bad` in " + n.name);
      };
    }
    const kind_spec* find_kind(std::string_view name) const override { return name == k.name ? &k : nullptr; }
    std::vector<std::string> kind_names() const override { return {k.name}; }
  } c;
  auto run = [&](const std::string& text) {
    diagnostics d;
    auto g = load_graph_text(text, "t.yaml", d);
    REQUIRE(g);
    validate(*g, c, d);
    return d.str();
  };
  CHECK(has(run("nodes:\n  n: {kind: test.checked, params: {rules: [ok, bad]}}\n"), "t.yaml:2:48: error: rule `bad` in n"));
  // A param of the wrong type is reported as such; the check does not run on it.
  auto wrong = run("nodes:\n  n: {kind: test.checked, params: {rules: bad}}\n");
  CHECK(has(wrong, "expects list"));
  CHECK(!has(wrong, "rule `bad`"));
}

TEST_CASE("replicas, restarts, colocate and tools are checked") {
  std::string out = check_text(R"(nodes:
  src: {kind: source.sequence, replicas: 0, restarts: -1, colocate: [src, outt], tools: [nope]}
  out: {kind: sink.count}
edges: [src -> out]
)");
  CHECK(has(out, "t.yaml:2:42: error: `replicas` of node `src` must be at least 1, found 0"));
  CHECK(has(out, "t.yaml:2:55: error: `restarts` of node `src` must be at least 0, found -1"));
  CHECK(has(out, "t.yaml:2:69: error: node `src` lists itself in `colocate`"));
  CHECK(has(out, "t.yaml:2:69: error: `colocate` of node `src` names `outt`, which is not a node\n  hint: did you mean `out`?"));
  CHECK(has(out, "t.yaml:2:89: error: `tools` of node `src` names `nope`, which is not a node"));
}

TEST_CASE("defaults.capacity below 1 is an error") {
  CHECK(has(check_text("defaults: {capacity: 0}\nnodes: {}\n"), "t.yaml:1:22: error: `defaults.capacity` must be at least 1"));
  builder b("g");
  b.default_capacity(0);
  diagnostics diags;
  validate(b.build(), testing::test_catalog{}, diags);
  CHECK(has(diags.str(), "`defaults.capacity` must be at least 1, found 0"));
}

TEST_CASE("apply_defaults fills params that were not given") {
  diagnostics diags;
  auto g = load_graph_text("nodes:\n  s: {kind: source.sequence, params: {count: 3}}\n  o: {kind: sink.count}\n", "t.yaml",
                           diags);
  REQUIRE(g);
  apply_defaults(*g, testing::test_catalog{});
  CHECK(g->nodes[0].params == config(config_map{{"count", 3}, {"start", 0}, {"step", 1}}));
  CHECK(g->nodes[1].params == config(config_map{}));  // `expect` has no default
}

TEST_CASE("apply_override sets a param, or reports an unknown node or a malformed assignment") {
  diagnostics diags;
  auto g = load_graph_text("nodes:\n  src: {kind: source.sequence, params: {count: 3}}\n", "t.yaml", diags);
  REQUIRE(g);
  apply_override(*g, "src.count=5", diags);
  apply_override(*g, "src.tags=[a, b]", diags);
  apply_override(*g, "src.label=x=y", diags);
  CHECK_FALSE(diags.has_errors());
  CHECK(*g->nodes[0].params.find("count") == config(5));
  CHECK(*g->nodes[0].params.find("tags") == config(config_list{"a", "b"}));
  CHECK(g->nodes[0].params.find("label")->as_string() == "x=y");
  apply_override(*g, "scr.count=1", diags);
  apply_override(*g, "count=1", diags);
  apply_override(*g, "src.count", diags);
  CHECK(diags.error_count() == 3);
  CHECK(has(diags.str(), "names node `scr`, which is not in the graph\n  hint: did you mean `src`?"));
  CHECK(has(diags.str(), "bad override `count=1`"));
  diagnostics later;
  validate(*g, testing::test_catalog{}, later);
  CHECK(has(later.str(), "unknown param `tags`"));
}

TEST_CASE("a tool must be a node whose kind declares a call") {
  loom::graph::diagnostics diags;
  auto g = loom::graph::load_graph_text(R"(graph: t
nodes:
  src: {kind: source.sequence}
  agent: {kind: flow.forward, tools: [out]}
  out: {kind: sink.count}
edges:
  - src -> agent -> out
)", "tools.yaml", diags);
  REQUIRE(g);
  loom::graph::validate(*g, loom::graph::testing::test_catalog{}, diags);
  CHECK(diags.str().find("tools.yaml:4:38: error: `tools` of node `agent` names `out` (sink.count), which cannot be "
                         "called") != std::string::npos);
}

TEST_CASE("recover: replace is for stateless nodes that call no tools and are not fed by another moving node") {
  std::string out = check_text(R"(nodes:
  src: {kind: source.sequence}
  a: {kind: flow.forward, recover: replace}
  b: {kind: flow.forward, recover: replace}
  c: {kind: flow.batch, recover: replace}
  d: {kind: flow.forward, recover: maybe}
  calc: {kind: tool.calculator, recover: replace}
  out: {kind: sink.count, recover: fail}
edges: [src -> a -> b -> c -> d -> out]
)");
  CHECK(!has(out, "node `a`"));
  CHECK(has(out, "t.yaml:4:36: error: node `b` is fed by `a`, which has `recover: replace` too: two moving nodes in "
                 "a row are not supported yet"));
  CHECK(has(out, "t.yaml:5:34: error: node `c` (flow.batch) holds state across values: `recover: replace` would "
                 "lose it"));
  CHECK(has(out, "t.yaml:6:36: error: `recover` of node `d` must be `fail` or `replace`, found `maybe`"));
  CHECK(has(out, "t.yaml:7:42: error: node `calc` (tool.calculator) is a tool: tools cannot move yet"));
  CHECK(!has(out, "node `out`"));
}
