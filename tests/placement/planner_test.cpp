// The planner: capacity, placement.host, labels, colocate, spread, locality of heavy edges, balance and
// determinism. GPU assignment is in gpu_test.cpp.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "plan_support.hpp"

using namespace loom::placement;
using namespace loom::placement::testing;

namespace {

// src -> NAME (kind, replicas, extra fields) -> out
std::string chain(const std::string& kind, int replicas, const std::string& extra = "") {
  return "nodes:\n  src: {kind: source.sequence}\n  w: {kind: " + kind + ", replicas: " + std::to_string(replicas) +
         extra + "}\n  out: {kind: sink.count}\nedges:\n  - src -> w -> out\n";
}

}  // namespace

TEST_CASE("instances never take more cpus than a host has" * doctest::timeout(10)) {
  auto r = plan_text(chain("test.worker", 6), hosts_yaml(3, 2));
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.p.instances_per_host == std::vector<int>{4, 2, 2});  // src and out declare no cpus: they stay on h0
  std::vector<double> used(3, 0);
  for (int i = 0; i < 6; ++i) used[r.at("w", i).host] += 1;
  for (double u : used) CHECK(u <= 2);

  auto full = plan_text(chain("test.worker", 7), hosts_yaml(3, 2));
  CHECK_FALSE(full.ok);
  CHECK(full.errors.find("node `w` instance 6 of 7 cannot be placed: of 3 hosts, `h0`, `h1` and `h2` have too few free cpus "
                         "(needs 1)") !=
        std::string::npos);
}

TEST_CASE("a node that needs more than any host has is an error naming it" * doctest::timeout(10)) {
  auto r = plan_text(chain("flow.forward", 1, ", resources: {cpus: 32, memory: 1GiB}"), hosts_yaml(2, 16));
  CHECK_FALSE(r.ok);
  CHECK(r.errors.find("g.yaml:3:51: error: node `w` needs 32 cpus; the most a host offers is 16 (`h0`)") !=
        std::string::npos);
  auto mem = plan_text(chain("flow.forward", 1, ", resources: {memory: 128GiB}"), hosts_yaml(2, 16, ", memory: 64GiB"));
  CHECK(mem.errors.find("node `w` needs 128 GiB of memory; the most a host offers is 64 GiB (`h0`)") != std::string::npos);
}

TEST_CASE("placement.host pins every instance; an unknown host gets a did-you-mean" * doctest::timeout(10)) {
  auto r = plan_text(chain("flow.forward", 2, ", placement: {host: h2}"), hosts_yaml(3, 4));
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("w", 0) == "h2");
  CHECK(r.where("w", 1) == "h2");
  CHECK(r.at("w", 1).reason == "pinned by placement.host");

  auto bad = plan_text(chain("flow.forward", 1, ", placement: {host: h7}"), hosts_yaml(3, 4));
  CHECK_FALSE(bad.ok);
  CHECK(bad.errors.find("error: node `w`: placement.host `h7` is not in the cluster\n  hint: did you mean `h0`?") !=
        std::string::npos);
}

TEST_CASE("placement.labels keeps a node on hosts with every label" * doctest::timeout(10)) {
  std::string cluster = R"(hosts:
  - {name: a, address: tcp://h:1, cpus: 2, labels: {zone: paris}}
  - {name: b, address: tcp://h:2, cpus: 2, labels: {zone: paris, gpu: yes}}
  - {name: c, address: tcp://h:3, cpus: 2, labels: {zone: london, gpu: yes}}
)";
  auto r = plan_text(chain("test.worker", 2, ", placement: {labels: {zone: paris, gpu: 'yes'}}"), cluster);
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("w", 0) == "b");
  CHECK(r.where("w", 1) == "b");
  auto none = plan_text(chain("test.worker", 1, ", placement: {labels: {zone: tokyo}}"), cluster);
  CHECK(none.errors.find("node `w`: no host has the labels zone=tokyo\n  hint: labels in the cluster: gpu=yes, "
                         "zone=london, zone=paris") != std::string::npos);
  auto conflict = plan_text(chain("test.worker", 1, ", placement: {host: a, labels: {gpu: 'yes'}}"), cluster);
  CHECK(conflict.errors.find("node `w`: placement.host `a` does not have the labels gpu=yes") != std::string::npos);
}

TEST_CASE("colocate: instance i goes on the host of the partner's instance i mod its replicas" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  src: {kind: source.sequence}
  a: {kind: test.worker, replicas: 2, spread: s}
  b: {kind: flow.forward, replicas: 3, colocate: [a]}
  out: {kind: sink.count}
edges:
  - src -> a -> out
  - src -> b -> out
)", hosts_yaml(3, 4));
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("a", 0) != r.where("a", 1));
  CHECK(r.where("b", 0) == r.where("a", 0));
  CHECK(r.where("b", 1) == r.where("a", 1));
  CHECK(r.where("b", 2) == r.where("a", 0));
  CHECK(r.at("b", 2).reason == "colocated with `a`");
}

TEST_CASE("colocate with a pinned partner that has no room is an error naming both" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  src: {kind: source.sequence, placement: {host: h0}}
  w: {kind: test.worker, replicas: 2, colocate: [src]}
  out: {kind: sink.count}
edges:
  - src -> w -> out
)", hosts_yaml(2, 1));
  CHECK_FALSE(r.ok);
  CHECK(r.errors.find("node `w` instance 1 must run on `h0` (colocated with `src`), but it has too few free cpus") !=
        std::string::npos);
}

TEST_CASE("spread: instances of one group never share a host" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  src: {kind: source.sequence}
  a: {kind: flow.forward, replicas: 2, spread: safety}
  b: {kind: flow.forward, spread: safety}
  out: {kind: sink.count}
edges:
  - src -> [a, b] -> out
)", hosts_yaml(3, 4));
  REQUIRE_MESSAGE(r.ok, r.errors);
  std::set<std::string> hosts{r.where("a", 0), r.where("a", 1), r.where("b")};
  CHECK(hosts.size() == 3);
  CHECK(r.at("a", 1).reason.find("spread group `safety`") != std::string::npos);

  auto too_many = plan_text(R"(nodes:
  src: {kind: source.sequence}
  a: {kind: flow.forward, replicas: 2, spread: safety}
  b: {kind: flow.forward, spread: safety}
  out: {kind: sink.count}
edges:
  - src -> [a, b] -> out
)", hosts_yaml(2, 4));
  CHECK_FALSE(too_many.ok);
  CHECK(too_many.errors.find("g.yaml:3:48: error: spread group `safety` has 3 instances but only 2 hosts can take them") !=
        std::string::npos);
}

TEST_CASE("heavy edges stay inside a host while it has room" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  src: {kind: source.sequence}
  a: {kind: test.worker}
  b: {kind: test.worker}
  out: {kind: sink.count}
edges:
  - src -> a -> b -> out
)", hosts_yaml(4, 4));
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.p.remote_links == 0);
  CHECK(r.at("b").reason == "near upstream `a`");

  // y has two producers on different hosts: it goes beside the one with the heavier edge.
  auto heavy = plan_text(R"(nodes:
  x: {kind: source.sequence, placement: {host: h1}}
  z: {kind: source.sequence, placement: {host: h2}}
  y: {kind: flow.forward}
  out: {kind: sink.count}
edges:
  - {from: z, to: y, capacity: 4}
  - {from: x, to: y, capacity: 1000}
  - y -> out
)", hosts_yaml(3, 4));
  REQUIRE_MESSAGE(heavy.ok, heavy.errors);
  CHECK(heavy.where("y") == "h1");
  CHECK(heavy.p.remote_links == 1);

  // No room beside the producer: the consumer goes to the least-loaded host and its link is remote.
  auto full = plan_text(chain("test.worker", 2), hosts_yaml(2, 1));
  REQUIRE_MESSAGE(full.ok, full.errors);
  CHECK(full.where("w", 0) != full.where("w", 1));
  CHECK(full.p.remote_links == 2);
}

TEST_CASE("load is balanced: least cpus used per cpu, then fewest instances, then host order" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  s: {kind: source.sequence, replicas: 8, resources: {cpus: 1}}
  out: {kind: sink.count, placement: {host: h0}}
edges:
  - s -> out
)", hosts_yaml(4, 4) + "  - {name: big, address: tcp://127.0.0.1:7200, cpus: 8}\n");
  REQUIRE_MESSAGE(r.ok, r.errors);
  // s is placed first (topological order), one instance at a time on the lowest (cpus used / cpus,
  // instances, host order): h0 h1 h2 h3 big big (big is at 1/8 then 2/8 with 2 instances) h0 h1.
  CHECK(r.p.instances_per_host == std::vector<int>{2 + 1, 2, 1, 1, 2});
  CHECK(r.at("s", 4).reason == "least loaded");
}

TEST_CASE("the same inputs give the same plan" * doctest::timeout(10)) {
  std::string g = R"(nodes:
  src: {kind: source.sequence, replicas: 3}
  a: {kind: test.worker, replicas: 5, spread: s1}
  b: {kind: test.gpu, replicas: 4}
  out: {kind: sink.count}
edges:
  - src -> a -> b -> out
)";
  std::string c = hosts_yaml(6, 3, ", gpus: 1");
  auto first = plan_text(g, c);
  auto second = plan_text(g, c);
  REQUIRE_MESSAGE(first.ok, first.errors);
  CHECK(explain(first.p, first.g, first.c) == explain(second.p, second.g, second.c));
}

TEST_CASE("the example pipeline plans onto the two local hosts: pinned, spread, colocated" * doctest::timeout(10)) {
  auto read = [](const std::string& path) {
    std::ifstream in(std::string(LOOM_SOURCE_DIR) + "/" + path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  auto r = plan_text(read("configs/cluster_pipeline.yaml"), read("configs/cluster/two_local.yaml"));
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("numbers") == "a");
  CHECK(r.where("tally") == "a");
  CHECK(r.where("work", 0) != r.where("work", 1));
  std::string text = explain(r.p, r.g, r.c);
  CHECK(text.find("numbers  a / cpu        pinned by placement.host") != std::string::npos);
  CHECK(text.find("links: 2 local, 2 remote") != std::string::npos);
  CHECK(text.find("work[1] -> tally  remote (b -> a)") != std::string::npos);
}

TEST_CASE("instances of a lost host move by the planner's rules: labels hold, full hosts are skipped" *
          doctest::timeout(10)) {
  std::string cluster = "hosts:\n"
                        "  - {name: h0, address: tcp://127.0.0.1:7101, cpus: 4}\n"
                        "  - {name: h1, address: tcp://127.0.0.1:7102, cpus: 1, labels: {role: relay}}\n"
                        "  - {name: h2, address: tcp://127.0.0.1:7103, cpus: 1, labels: {role: relay}}\n"
                        "  - {name: h3, address: tcp://127.0.0.1:7104, cpus: 1, labels: {role: relay}}\n";
  auto r = plan_text("nodes:\n  src: {kind: source.sequence, placement: {host: h0}}\n"
                     "  w: {kind: test.worker, replicas: 2, placement: {labels: {role: relay}}, recover: replace}\n"
                     "  out: {kind: sink.count, placement: {host: h0}}\nedges:\n  - src -> w -> out\n",
                     cluster);
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("w", 0) == "h1");
  CHECK(r.where("w", 1) == "h2");
  int w0 = r.p.first_instance[1];
  catalog kinds;
  loom::graph::diagnostics d;
  // h1 is lost: w[0] goes to h3 (h2 is full, h0 lacks the label); everything else stays.
  auto moved = replace_lost(r.g, kinds, r.c, r.p, {0, 1, 0, 0}, {w0}, d);
  INFO(d.str());
  REQUIRE_FALSE(d.has_errors());
  CHECK(moved.instances[w0].host == 3);
  CHECK(moved.instances[w0 + 1].host == 2);
  CHECK(moved.instances[0].host == 0);
  // h1 and h3 are lost: no host with the label has room; the error names the instance, and each host with
  // the constraint that excluded it.
  loom::graph::diagnostics none;
  replace_lost(r.g, kinds, r.c, r.p, {0, 1, 0, 1}, {w0}, none);
  CHECK(none.has_errors());
  CHECK(none.str().find("node `w` instance 0 of 2 cannot be placed: of 4 hosts, `h1` and `h3` are lost (out of the "
                        "run); `h0` does not match its placement (labels role=relay); `h2` has too few free cpus "
                        "(needs 1)") != std::string::npos);
  // A pin to the lost host says where the node started; it may go on elsewhere.
  auto pinned = plan_text("nodes:\n  src: {kind: source.sequence, placement: {host: h0}}\n"
                          "  w: {kind: flow.forward, placement: {host: h1}, recover: replace}\n"
                          "  out: {kind: sink.count, placement: {host: h2}}\nedges:\n  - src -> w -> out\n",
                          cluster);
  REQUIRE_MESSAGE(pinned.ok, pinned.errors);
  loom::graph::diagnostics d2;
  auto p2 = replace_lost(pinned.g, kinds, pinned.c, pinned.p, {0, 1, 0, 0}, {1}, d2);
  INFO(d2.str());
  REQUIRE_FALSE(d2.has_errors());
  CHECK(p2.instances[1].host != 1);
  CHECK(p2.instances[1].host >= 0);
}

TEST_CASE("in recovery a spread group yields: a replica of a lost host shares a host, and the plan says so" *
          doctest::timeout(10)) {
  std::string cluster = "hosts:\n"
                        "  - {name: a, address: tcp://127.0.0.1:7101, cpus: 4}\n"
                        "  - {name: b, address: tcp://127.0.0.1:7102, cpus: 4}\n";
  auto r = plan_text("nodes:\n  src: {kind: source.sequence, placement: {host: a}}\n"
                     "  w: {kind: flow.forward, replicas: 2, spread: workers, recover: replace}\n"
                     "  out: {kind: sink.count, placement: {host: a}}\nedges:\n  - src -> w -> out\n",
                     cluster);
  REQUIRE_MESSAGE(r.ok, r.errors);
  REQUIRE(r.where("w", 0) != r.where("w", 1));  // at plan time, spread holds
  int w0 = r.p.first_instance[1];
  int on_b = r.where("w", 0) == "b" ? w0 : w0 + 1;
  catalog kinds;
  loom::graph::diagnostics d;
  auto moved = replace_lost(r.g, kinds, r.c, r.p, {0, 1}, {on_b}, d);
  INFO(d.str());
  REQUIRE_FALSE(d.has_errors());
  CHECK(moved.instances[static_cast<std::size_t>(on_b)].host == 0);
  CHECK(moved.instances[static_cast<std::size_t>(on_b)].reason.find("spread group `workers` now shares host `a`") !=
        std::string::npos);
}

TEST_CASE("a strict spread group holds in recovery: the replica fits nowhere, naming the group" *
          doctest::timeout(10)) {
  std::string cluster = "hosts:\n"
                        "  - {name: a, address: tcp://127.0.0.1:7101, cpus: 4}\n"
                        "  - {name: b, address: tcp://127.0.0.1:7102, cpus: 4}\n";
  auto r = plan_text("nodes:\n  src: {kind: source.sequence, placement: {host: a}}\n"
                     "  w: {kind: flow.forward, replicas: 2, spread: {group: workers, strict: true}, recover: replace}\n"
                     "  out: {kind: sink.count, placement: {host: a}}\nedges:\n  - src -> w -> out\n",
                     cluster);
  REQUIRE_MESSAGE(r.ok, r.errors);
  int w0 = r.p.first_instance[1];
  int on_b = r.where("w", 0) == "b" ? w0 : w0 + 1;
  catalog kinds;
  loom::graph::diagnostics d;
  auto moved = replace_lost(r.g, kinds, r.c, r.p, {0, 1}, {on_b}, d);
  REQUIRE(d.has_errors());
  CHECK(d.str().find("holds another instance of spread group `workers`") != std::string::npos);
  CHECK(moved.instances[static_cast<std::size_t>(on_b)].host == -1);
}
