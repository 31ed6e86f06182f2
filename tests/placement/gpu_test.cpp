// GPUs: each instance that needs one gets a device; a GPU is given whole unless the node states its
// gpu_memory; neighbours on one host share a GPU when it has memory left; kinds with a CPU path fall back
// to it, and kinds without one are an error naming the node.
#include <doctest/doctest.h>

#include "plan_support.hpp"

using namespace loom::placement;
using namespace loom::placement::testing;

namespace {

std::string chain(const std::string& kind, int replicas, const std::string& extra = "") {
  return "nodes:\n  src: {kind: source.sequence}\n  w: {kind: " + kind + ", replicas: " + std::to_string(replicas) +
         extra + "}\n  out: {kind: sink.count}\nedges:\n  - src -> w -> out\n";
}

const std::string one_host_two_gpus = R"(hosts:
  - {name: a, address: tcp://h:1, cpus: 16, gpus: [{memory: 80GiB}, {memory: 80GiB}]}
  - {name: b, address: tcp://h:2, cpus: 16}
)";

}  // namespace

TEST_CASE("each GPU instance gets its own GPU; the next one falls back to the CPU path" * doctest::timeout(10)) {
  auto r = plan_text(chain("test.gpu", 3), one_host_two_gpus);
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("w", 0) == "a/gpu0");
  CHECK(r.where("w", 1) == "a/gpu1");
  CHECK(r.at("w", 2).device == -1);
  CHECK(r.at("w", 2).reason.find("CPU fallback: no GPU free") != std::string::npos);
}

TEST_CASE("a kind without a CPU path and no GPU left is an error naming the node" * doctest::timeout(10)) {
  auto r = plan_text(chain("test.gpu_only", 3), one_host_two_gpus);
  CHECK_FALSE(r.ok);
  CHECK(r.errors.find("node `w` instance 2 of 3 cannot be placed: of 2 hosts, `a` and `b` have no free GPU") != std::string::npos);
}

TEST_CASE("GPUs too small or too few anywhere: an error, or the CPU path for every instance" * doctest::timeout(10)) {
  std::string cluster = R"(hosts:
  - {name: a, address: tcp://h:1, cpus: 16, gpus: [{memory: 80GiB}, {memory: 24GiB}]}
  - {name: b, address: tcp://h:2, cpus: 16, gpus: [{memory: 24GiB}]}
)";
  auto r = plan_text(chain("test.gpu_only", 1, ", resources: {gpus: 2, gpu_memory: 40GiB}"), cluster);
  CHECK_FALSE(r.ok);
  CHECK(r.errors.find("node `w` needs 2 GPUs with 40 GiB each; no host has more than 1 (a: 1 x 80 GiB)") !=
        std::string::npos);
  auto fallback = plan_text(chain("test.gpu", 2, ", resources: {cpus: 1, gpus: 1, gpu_memory: 100GiB}"), cluster);
  REQUIRE_MESSAGE(fallback.ok, fallback.errors);
  CHECK(fallback.at("w", 1).device == -1);
  CHECK(fallback.at("w", 1).reason.find("CPU fallback: needs 1 GPU with 100 GiB, no host has one") != std::string::npos);
}

TEST_CASE("GPU neighbours on one host share a GPU when they state gpu_memory and it fits" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  src: {kind: source.sequence}
  k1: {kind: test.gpu, resources: {cpus: 1, gpus: 1, gpu_memory: 30GiB}}
  k2: {kind: test.gpu, resources: {cpus: 1, gpus: 1, gpu_memory: 30GiB}}
  k3: {kind: test.gpu, resources: {cpus: 1, gpus: 1, gpu_memory: 30GiB}}
  out: {kind: sink.count}
edges:
  - src -> k1 -> k2 -> k3 -> out
)", one_host_two_gpus);
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("k1") == "a/gpu0");
  CHECK(r.where("k2") == "a/gpu0");  // 60 of 80 GiB
  CHECK(r.where("k3") == "a/gpu1");  // 90 would not fit
  int same_gpu = 0;
  for (const auto& l : r.p.links) same_gpu += l.same_device ? 1 : 0;
  CHECK(same_gpu == 1);
  CHECK(explain(r.p, r.g, r.c).find("k1 -> k2  local, same GPU (a)") != std::string::npos);
}

TEST_CASE("a GPU given whole is not shared" * doctest::timeout(10)) {
  auto r = plan_text(R"(nodes:
  src: {kind: source.sequence}
  k1: {kind: test.gpu}
  k2: {kind: test.gpu, resources: {cpus: 1, gpus: 1, gpu_memory: 1GiB}}
  out: {kind: sink.count}
edges:
  - src -> k1 -> k2 -> out
)", one_host_two_gpus);
  REQUIRE_MESSAGE(r.ok, r.errors);
  CHECK(r.where("k1") == "a/gpu0");
  CHECK(r.where("k2") == "a/gpu1");
}
