// tests/transport/window_test.cpp: links between two hosts get the run's window (cluster::widen_remote_links):
// both ends of each such link and the receive rules agree on it, links inside one host and edges whose
// capacity the graph file sets keep their capacity, and a window of 0 changes nothing.
#include <doctest/doctest.h>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/local/executor.hpp"

using namespace loom;

namespace {

local::deployment expanded(const registry& kinds, const std::string& text) {
  graph::diagnostics diags;
  auto g = graph::load_graph_text(text, "window.yaml", diags);
  REQUIRE(g);
  graph::validate(*g, kinds, diags);
  INFO(diags.str());
  REQUIRE_FALSE(diags.has_errors());
  graph::apply_defaults(*g, kinds);
  return local::expand(*g, kinds);
}

// The capacity of the link from instance `p`'s first edge on port 0 to its first consumer, on both ends.
std::pair<std::int64_t, std::int64_t> capacities(const local::deployment& d, std::uint32_t p) {
  const auto& l = d.instances[p].out_ports[0][0].links[0];
  return {l.capacity, d.instances[l.consumer].in_links[l.remote].capacity};
}

}  // namespace

TEST_CASE("links between two hosts get the window; links inside a host and sized edges keep theirs" *
          doctest::timeout(30)) {
  registry kinds;
  actors::register_builtins(kinds);
  // numbers (host 0) -> pass (host 1) -> slow (host 0, capacity set) -> tally (host 0)
  auto text = std::string(
      "graph: w\nnodes:\n  numbers: {kind: source.sequence}\n  pass: {kind: flow.forward}\n"
      "  slow: {kind: flow.forward}\n  tally: {kind: sink.count}\n"
      "edges:\n  - numbers -> pass\n  - {from: pass, to: slow, capacity: 16}\n  - slow -> tally\n");
  auto d = expanded(kinds, text);
  REQUIRE(d.instances.size() == 4);
  std::vector<std::uint32_t> host{0, 1, 0, 0};
  auto before = cluster::make_rules(d);
  CHECK(cluster::widen_remote_links(d, host, 0) == 0);  // no window: nothing changes
  CHECK(capacities(d, 0) == std::pair<std::int64_t, std::int64_t>{256, 256});

  CHECK(cluster::widen_remote_links(d, host, 4096) == 1);
  CHECK(capacities(d, 0) == std::pair<std::int64_t, std::int64_t>{4096, 4096});  // numbers -> pass: across
  CHECK(capacities(d, 1) == std::pair<std::int64_t, std::int64_t>{16, 16});      // the file's bound holds
  CHECK(capacities(d, 2) == std::pair<std::int64_t, std::int64_t>{256, 256});    // slow -> tally: one host
  // The receive rules follow: a batch or a credit of up to the window on the widened link.
  auto rules = cluster::make_rules(d);
  CHECK(before.streams.at(transport::run_rules::key(0, 1)).in_links.at(0) == 256);
  CHECK(rules.streams.at(transport::run_rules::key(0, 1)).in_links.at(0) == 4096);
  CHECK(rules.streams.at(transport::run_rules::key(1, 0)).out_links.at(0) == 4096);
  CHECK(rules.streams.at(transport::run_rules::key(1, 2)).in_links.at(0) == 16);
  // Applied again (a second host widening the same expansion): the same result.
  CHECK(cluster::widen_remote_links(d, host, 4096) == 0);
  CHECK(capacities(d, 0) == std::pair<std::int64_t, std::int64_t>{4096, 4096});

  // A window below an edge's capacity leaves it; `defaults.capacity` is a bound the file chose too.
  auto big = expanded(kinds, "graph: w\nnodes:\n  a: {kind: source.sequence}\n  b: {kind: sink.count}\n"
                             "edges:\n  - {from: a, to: b, capacity: 10000}\n");
  CHECK(cluster::widen_remote_links(big, {0, 1}, 4096) == 0);
  CHECK(capacities(big, 0).first == 10000);
  auto defaults = expanded(kinds, "graph: w\ndefaults: {capacity: 32}\nnodes:\n  a: {kind: source.sequence}\n"
                                  "  b: {kind: sink.count}\nedges:\n  - a -> b\n");
  CHECK(cluster::widen_remote_links(defaults, {0, 1}, 4096) == 0);
  CHECK(capacities(defaults, 0).first == 32);
}
