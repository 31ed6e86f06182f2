// tests/observe/trace_cluster_test.cpp: a traced two-worker run with real processes on 127.0.0.1. The driver
// sends its trace context in the deploy, each worker records its part and ships its spans back, and the
// driver exports one trace (OTLP, to a receiver written in Python) and one Chrome file with a process per
// host; the agent's model requests to a local chat-completions server carry the same trace id.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "loom/runtime/observe/trace.hpp"
#include "tests/cluster/harness.hpp"
#include "tests/observe/receiver.hpp"

using namespace loom::test::cluster;
using loom::test::observe::attribute;
using loom::test::observe::count_roots;
using loom::test::observe::receiver;
using json = nlohmann::json;
namespace observe = loom::observe;

namespace {

std::string graph_yaml(const std::string& chat_url) {
  return R"(graph: traced-cluster
nodes:
  numbers: {kind: source.sequence, params: {count: 300}, placement: {host: a}}
  pass: {kind: flow.forward, placement: {host: b}}
  tally: {kind: sink.count, placement: {host: a}}
  question: {kind: source.value, params: {value: "6*7"}, placement: {host: a}}
  asker:
    kind: agent.llm
    tools: [calc]
    placement: {host: a}
    params: {backend: http, base_url: ")" + chat_url + R"(", model: test-model, retries: 0}
  calc: {kind: tool.calculator, placement: {host: b}}
  answers: {kind: sink.count, placement: {host: a}}
edges:
  - numbers -> pass -> tally
  - question -> asker -> answers
)";
}

}  // namespace

TEST_CASE("a traced two-worker run is one trace: driver, both workers and the agent's model requests" *
          doctest::timeout(120)) {
  receiver rx("cluster");
  cluster_dir d("trace");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("graph.yaml", graph_yaml(rx.chat_url()));
  auto chrome = d.dir / "trace.json";
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--otlp", rx.otlp_url(),
                        "--trace", chrome.string()},
                       o);
  INFO(r.err);
  INFO(a.log());
  INFO(b.log());
  REQUIRE(r.status == 0);

  // OTLP: one trace id over every host's spans.
  auto spans = rx.spans();
  REQUIRE(!spans.empty());
  std::set<std::string> traces;
  std::map<std::string, std::vector<json>> by_host;
  std::map<std::string, json> by_id;
  for (const auto& s : spans) {
    traces.insert(s.at("traceId"));
    by_host[s.at("host.name")].push_back(s);
    by_id[s.at("spanId")] = s;
  }
  REQUIRE(traces.size() == 1);
  auto trace = *traces.begin();
  REQUIRE(by_host.size() == 3);
  REQUIRE(by_host.count("driver") == 1);
  REQUIRE(by_host.count("a") == 1);
  REQUIRE(by_host.count("b") == 1);
  // The driver's run span is the root; each worker's run span is its child; every other span has a parent.
  json root;
  for (const auto& s : by_host["driver"])
    if (!s.contains("parentSpanId")) root = s;
  REQUIRE(root.is_object());
  CHECK(count_roots(spans, by_id) == 1);
  for (const auto* host : {"a", "b"}) {
    int worker_roots = 0;
    for (const auto& s : by_host[host])
      if (s.at("name") == "run traced-cluster") {
        ++worker_roots;
        CHECK(s.at("parentSpanId") == root.at("spanId"));
      }
    CHECK_MESSAGE(worker_roots == 1, host);
  }
  // Batch spans on both workers, with the values each instance handled.
  std::map<std::string, std::int64_t> handled;
  for (const auto& s : spans)
    if (s.at("name") == "batch") handled[attribute(s, "loom.node")] += std::stoll(attribute(s, "loom.count"));
  CHECK(handled["pass"] == 300);
  CHECK(handled["tally"] == 300);
  // The agent (on a) made two model requests; the chat server saw the run's trace id in each.
  std::vector<json> chats;
  for (const auto& s : by_host["a"])
    if (attribute(s, "gen_ai.operation.name") == "chat") chats.push_back(s);
  REQUIRE(chats.size() == 2);
  for (const auto& c : chats) {
    CHECK(attribute(c, "gen_ai.usage.input_tokens") == "11");
    CHECK(attribute(c, "gen_ai.usage.output_tokens") == "7");
  }
  auto headers = rx.traceparents();
  REQUIRE(headers.size() == 2);
  for (const auto& h : headers) {
    auto c = observe::parse_traceparent(h);
    REQUIRE_MESSAGE(c, h);
    CHECK(observe::to_hex(c->trace) == trace);
    CHECK(by_id.count(observe::to_hex(c->span)) == 1);
  }
  // The tool served on b is a child of the agent's call span on a: the call carried it across the wire.
  int tool_on_b = 0;
  for (const auto& s : by_host["b"]) {
    if (s.at("name") != "tool calc") continue;
    ++tool_on_b;
    REQUIRE(s.contains("parentSpanId"));
    REQUIRE(by_id.count(s.at("parentSpanId")) == 1);
    const auto& call = by_id[s.at("parentSpanId")];
    CHECK(call.at("name") == "call calc");
    CHECK(call.at("host.name") == "a");
  }
  CHECK(tool_on_b >= 1);

  // Chrome: a process per host; the workers' spans, put on the driver's clock, lie within its run span.
  auto doc = json::parse(read_file(chrome));
  std::map<int, std::string> process;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "M" && e.at("name") == "process_name") process[e.at("pid")] = e.at("args").at("name");
  CHECK(process.size() == 3);
  double run_end = -1;
  for (const auto& e : doc.at("traceEvents"))
    if (e.at("ph") == "X" && e.at("cat") == "run" && process[e.at("pid")] == "driver")
      run_end = e.at("ts").get<double>() + e.at("dur").get<double>();
  REQUIRE(run_end > 0);
  int worker_events = 0;
  for (const auto& e : doc.at("traceEvents")) {
    if (e.at("ph") != "X" || process[e.at("pid")] == "driver") continue;
    ++worker_events;
    // Same machine: the offset is near zero; a few ms of slack for the estimate.
    CHECK(e.at("ts").get<double>() >= -5000);
    CHECK(e.at("ts").get<double>() + e.at("dur").get<double>() <= run_end + 5000);
  }
  CHECK(worker_events > 4);
  // The agent's call on a flows to the tool on b and back: arrows across the two processes.
  int call_from_a = 0, call_into_b = 0;
  for (const auto& e : doc.at("traceEvents")) {
    if (!e.contains("cat") || e.at("cat") != "flow" || e.at("name") != "call") continue;
    if (e.at("ph") == "s" && process[e.at("pid")] == "a") ++call_from_a;
    if (e.at("ph") == "f" && process[e.at("pid")] == "b") ++call_into_b;
  }
  CHECK(call_from_a >= 1);
  CHECK(call_from_a == call_into_b);
}
