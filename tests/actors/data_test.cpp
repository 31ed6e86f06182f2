// Tests of the data kinds that call tools and arbitrate: flow.call (a tool call per record) and flow.vote
// (matching redundant branches' answers). Each node runs in the agents' tool context
// (tests/agents/agent_harness.hpp): calls are answered at once, or queued and answered in or out of order.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "loom/runtime/json.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "tests/actors/harness.hpp"
#include "tests/agents/agent_harness.hpp"
#include "tests/support/graph_runner.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::graph::config;
using loom::graph::config_map;
using loom::test::tool_context;

namespace {

value record(std::string_view json) { return loom::from_json(nlohmann::ordered_json::parse(json)); }

// One node of `kind` with params `given` (defaults filled) and a tool context.
class with_tools {
 public:
  with_tools(std::string_view kind, config_map given) : def_(loom::test::builtin_kinds().find(kind)), ctx(outputs(given)) {
    REQUIRE(def_ != nullptr);
    for (const auto& p : def_->spec.params)
      if (p.default_value && config(given).find(p.name) == nullptr) given.emplace_back(p.name, *p.default_value);
    init_.name = "under_test";
    init_.outputs = ctx.out.size();
    init_.params = loom::params(loom::to_value(config(std::move(given))).as_map());
    node = def_->make(init_);
  }
  void start() { node->on_start(ctx); }
  void send(value v, std::size_t port = 0) { node->on_message(ctx, port, v); }
  void send_run(const std::vector<value>& vs) { node->on_run(ctx, 0, vs); }
  std::vector<value>& out(std::size_t port = 0) { return ctx.out.at(port); }

 private:
  std::size_t outputs(const config_map& given) {
    return loom::test::builtin_kinds().find(std::string(def_->spec.name))->spec.output_ports(config(given)).size();
  }
  const loom::kind_def* def_;
  loom::node_init init_;

 public:
  tool_context ctx;
  std::unique_ptr<loom::node> node;
};

loom::graph::kind_spec pricing_spec() {
  return loom::test::tool_spec("prices", {loom::graph::param_spec::integer("sku", "the item").require(),
                                          loom::graph::param_spec::integer("qty", "how many")});
}

// A tool that answers {sku, total: qty * 2.5}, failing for sku 13.
value pricing(const value& req) {
  if (req.find("sku")->as_int() == 13) throw std::runtime_error("sku 13 is not sold");
  return value{value_map{{"sku", *req.find("sku")}, {"total", 2.5 * static_cast<double>(req.find("qty")->as_int())}}};
}

}  // namespace

TEST_SUITE("flow.call" * doctest::timeout(10)) {
  TEST_CASE("calls its tool with arguments made by the jq program and merges the reply under `into`") {
    with_tools n("flow.call", {{"args", "{sku: .item, qty: .n}"}, {"into", "price"}});
    n.ctx.add_tool("prices", pricing_spec(), pricing);
    n.start();
    n.send(record(R"({"id": 1, "item": 7, "n": 4})"));
    REQUIRE(n.out().size() == 1);
    CHECK(n.out()[0] == record(R"({"id": 1, "item": 7, "n": 4, "price": {"sku": 7, "total": 10.0}})"));
    REQUIRE(n.ctx.table["prices"].requests.size() == 1);
    CHECK(n.ctx.table["prices"].requests[0] == record(R"({"sku": 7, "qty": 4})"));
  }

  TEST_CASE("an `into` field the record has is replaced in place; without `into` the reply goes alone") {
    with_tools merged("flow.call", {{"args", "{sku: .item}"}, {"into", "item"}});
    merged.ctx.add_tool("prices", pricing_spec(), [](const value& r) { return value{r.find("sku")->as_int() * 10}; });
    merged.start();
    merged.send(record(R"({"item": 3, "after": true})"));
    CHECK(merged.out() == std::vector<value>{record(R"({"item": 30, "after": true})")});

    with_tools alone("flow.call", {{"args", "{sku: .item, qty: 2}"}});
    alone.ctx.add_tool("prices", pricing_spec(), pricing);
    alone.start();
    alone.send(record(R"({"item": 5})"));
    CHECK(alone.out() == std::vector<value>{record(R"({"sku": 5, "total": 5.0})")});
  }

  TEST_CASE("a 19-digit integer and 1/3 survive the call unchanged, in the record and in the arguments") {
    with_tools n("flow.call", {{"args", "{sku: .id, qty: 1}"}, {"into", "echo"}});
    n.ctx.add_tool("prices", pricing_spec(), [](const value& r) { return value{value_map{{"got", *r.find("sku")}, {"third", 1.0 / 3}}}; });
    n.start();
    value in = record(R"({"id": 1234567890123456789, "ratio": 0.3333333333333333})");
    n.send(in);
    REQUIRE(n.out().size() == 1);
    CHECK(n.ctx.table["prices"].requests[0].find("sku")->as_int() == 1234567890123456789);
    CHECK(loom::to_json_line(n.out()[0]) ==
          R"({"id":1234567890123456789,"ratio":0.3333333333333333,"echo":{"got":1234567890123456789,"third":0.3333333333333333}})");
  }

  TEST_CASE("a run keeps at most max_in_flight calls out; ordered: replies out of order come out in order") {
    with_tools n("flow.call", {{"args", "{sku: .}"}, {"max_in_flight", 3}});
    n.ctx.add_tool("prices", pricing_spec(), [](const value& r) { return *r.find("sku"); });
    n.ctx.queue_calls = true;
    n.start();
    std::vector<value> in;
    for (int i = 0; i < 10; ++i) in.emplace_back(i);
    n.send_run(in);
    CHECK(n.ctx.calls_made == 3);  // no reply yet: three out, seven waiting
    CHECK(n.out().empty());
    // Answer the latest first, round after round: each reply lets the next call out.
    std::size_t most = 0;
    while (!n.ctx.queued.empty()) {
      most = std::max(most, n.ctx.queued.size());
      auto last = std::move(n.ctx.queued.back());
      n.ctx.queued.pop_back();
      last(n.ctx);
    }
    CHECK(most == 3);
    CHECK(n.ctx.calls_made == 10);
    CHECK(n.out() == in);
  }

  TEST_CASE("ordered: false sends each result as its reply comes") {
    with_tools n("flow.call", {{"args", "{sku: .}"}, {"max_in_flight", 4}, {"ordered", false}});
    n.ctx.add_tool("prices", pricing_spec(), [](const value& r) { return *r.find("sku"); });
    n.ctx.queue_calls = true;
    n.start();
    n.send_run({value{0}, value{1}, value{2}, value{3}});
    n.ctx.run_queued(/*reverse=*/true);
    CHECK(n.out() == std::vector<value>{value{3}, value{2}, value{1}, value{0}});
  }

  TEST_CASE("failures go to `errors` with the record and the reason; the others go on, in order") {
    with_tools n("flow.call", {{"args", "{sku: .sku, qty: 1}"}, {"into", "price"}});
    n.ctx.add_tool("prices", pricing_spec(), pricing);
    n.ctx.queue_calls = true;
    n.start();
    n.send_run({record(R"({"sku": 1})"), record(R"({"sku": 13})"), record(R"({"sku": "x"})"), value{"text"},
                record(R"({"sku": 2})")});
    n.ctx.run_queued(true);
    REQUIRE(n.out().size() == 2);
    CHECK(n.out()[0].find("sku")->as_int() == 1);
    CHECK(n.out()[1].find("sku")->as_int() == 2);
    REQUIRE(n.out(1).size() == 3);
    std::vector<std::string> errors;
    for (const auto& e : n.out(1)) {
      CHECK(e.find("tool")->as_string() == "prices");
      errors.push_back(loom::to_json_line(*e.find("record")) + " " + e.find("error")->as_string());
    }
    std::sort(errors.begin(), errors.end());
    CHECK(errors[0].find("\"text\"") == 0);  // the record is no map: args' `.sku` fails in jq
    CHECK(errors[0].find("args:") != std::string::npos);
    CHECK(errors[1].find("{\"sku\":\"x\"} ") == 0);
    CHECK(errors[1].find("argument `sku`") != std::string::npos);  // the tool's argument check names it
    CHECK(errors[2].find("{\"sku\":13} ") == 0);
    CHECK(errors[2].find("sku 13 is not sold") != std::string::npos);
  }

  TEST_CASE("args that give no map, or a record that is no map while `into` is set, are failures too") {
    with_tools n("flow.call", {{"args", ".sku"}, {"into", "price"}});
    n.ctx.add_tool("prices", pricing_spec(), pricing);
    n.start();
    n.send(record(R"({"sku": 1})"));
    with_tools m("flow.call", {{"args", "{sku: 1}"}, {"into", "price"}});
    m.ctx.add_tool("prices", pricing_spec(), pricing);
    m.start();
    m.send(value{7});
    REQUIRE(n.out(1).size() == 1);
    CHECK(n.out(1)[0].find("error")->as_string().find("not a map of arguments") != std::string::npos);
    REQUIRE(m.out(1).size() == 1);
    CHECK(m.out(1)[0].find("error")->as_string() == "the record (int) is not a map to put `price` in");
  }

  TEST_CASE("with `errors` unconnected a failed call fails the node, naming it, the record and the reason") {
    with_tools n("flow.call", {{"args", "{sku: .sku, qty: 1}"}});
    n.ctx.add_tool("prices", pricing_spec(), pricing);
    n.ctx.wired[1] = false;
    n.start();
    n.send(record(R"({"sku": 1})"));
    try {
      n.send(record(R"({"sku": 13})"));
      FAIL("no error");
    } catch (const std::runtime_error& e) {
      std::string what = e.what();
      CHECK(what.find("flow.call `under_test`") != std::string::npos);
      CHECK(what.find("{\"sku\":13}") != std::string::npos);
      CHECK(what.find("sku 13 is not sold") != std::string::npos);
      CHECK(what.find("`errors` is not connected") != std::string::npos);
    }
  }

  TEST_CASE("one tool of an MCP node: the request names it, and its structured reply is the result") {
    auto spec = loom::test::tool_spec("mcp", {loom::graph::param_spec::string("tool", "which"),
                                              loom::graph::param_spec::map("arguments", "its arguments")});
    spec.call->lists_tools = true;
    with_tools n("flow.call", {{"args", "{path: .file}"}, {"tool", "read"}, {"into", "content"}});
    n.ctx.add_tool("fs", spec, [](const value& r) {
      return value{value_map{{"text", "{...}"}, {"structured", value{value_map{{"asked", *r.find("tool")},
                                                                               {"with", *r.find("arguments")}}}}}};
    });
    n.start();
    n.send(record(R"({"file": "a.md"})"));
    CHECK(n.out() == std::vector<value>{record(R"({"file": "a.md", "content": {"asked": "read", "with": {"path": "a.md"}}})")});
  }

  TEST_CASE("the node needs one tool; an MCP node needs `tool`; bad args do not compile") {
    with_tools none("flow.call", {});
    CHECK_THROWS_WITH_AS(none.start(), doctest::Contains("needs exactly one node in its `tools`"), std::invalid_argument);
    auto spec = loom::test::tool_spec("mcp", {});
    spec.call->lists_tools = true;
    with_tools mcp("flow.call", {});
    mcp.ctx.add_tool("fs", spec, [](const value& r) { return r; });
    CHECK_THROWS_WITH_AS(mcp.start(), doctest::Contains("say which with `tool`"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(with_tools("flow.call", {{"args", "{a: }"}}), doctest::Contains("args: syntax error"),
                         std::invalid_argument);
  }
}

TEST_SUITE("flow.vote" * doctest::timeout(10)) {
  std::uint64_t counter(const std::string& node, const std::string& name, const std::string& label,
                        const std::string& v, const std::string& input = "") {
    loom::observe::label_set labels{{"node", node}};
    if (!input.empty()) labels.emplace_back("input", input);
    labels.emplace_back(label, v);
    return loom::observe::metrics().get_counter(name, "", labels).value();
  }

  TEST_CASE("answers matched by arrival order: agreement goes to out, a split to disagree with who said what") {
    with_tools v("flow.vote", {{"branches", 3}});
    v.start();
    v.send(value{1}, 0);
    v.send(value{1}, 1);
    CHECK(v.out().empty());  // waits for c
    v.send(value{1}, 2);
    CHECK(v.out() == std::vector<value>{value{1}});
    CHECK(v.out(1).empty());
    v.send(value{5}, 0);
    v.send(value{6}, 1);
    v.send(value{5}, 2);
    REQUIRE(v.out().size() == 2);
    CHECK(v.out()[1] == value{5});
    REQUIRE(v.out(1).size() == 1);
    CHECK(v.out(1)[0] == record(R"({"key": 1, "decided": true, "decision": 5,
        "answers": [{"input": "a", "value": 5}, {"input": "b", "value": 6}, {"input": "c", "value": 5}],
        "missing": []})"));
  }

  TEST_CASE("with a key, answers arriving in different orders are matched by it") {
    with_tools v("flow.vote", {{"key", ".id"}, {"answer", ".v"}});
    v.start();
    v.send(record(R"({"id": 1, "v": "x"})"), 0);
    v.send(record(R"({"id": 2, "v": "y"})"), 0);
    v.send(record(R"({"id": 2, "v": "y", "from": "b"})"), 1);
    v.send(record(R"({"id": 1, "v": "x", "from": "b"})"), 1);
    // The decision is the lowest input's answer.
    CHECK(v.out() == std::vector<value>{record(R"({"id": 2, "v": "y"})"), record(R"({"id": 1, "v": "x"})")});
    CHECK(v.out(1).empty());
  }

  TEST_CASE("numeric compares within the tolerance; without quorum nothing is decided") {
    with_tools v("flow.vote", {{"compare", "numeric"}, {"tolerance", 0.01}});
    v.start();
    v.send(value{1.0}, 0);
    v.send(value{1.005}, 1);
    v.send(value{2.0}, 0);
    v.send(value{2.5}, 1);
    CHECK(v.out() == std::vector<value>{value{1.0}});
    REQUIRE(v.out(1).size() == 1);
    CHECK(*v.out(1)[0].find("decided") == value{false});
    CHECK(v.out(1)[0].find("decision")->is_null());
  }

  TEST_CASE("compare: jq decides agreement with `same`, given both answers") {
    with_tools v("flow.vote", {{"compare", "jq"}, {"same", "(.[0] | ascii_downcase) == (.[1] | ascii_downcase)"}});
    v.start();
    v.send(value{"Paris"}, 0);
    v.send(value{"PARIS"}, 1);
    v.send(value{"Paris"}, 0);
    v.send(value{"Lyon"}, 1);
    CHECK(v.out() == std::vector<value>{value{"Paris"}});
    CHECK(v.out(1).size() == 1);
  }

  TEST_CASE("a straggler: past timeout_ms a question is decided without it, when the next value arrives") {
    with_tools v("flow.vote", {{"branches", 3}, {"quorum", 2}, {"timeout_ms", 0}, {"key", ".id"}});
    v.start();
    v.send(record(R"({"id": 1})"), 0);
    v.send(record(R"({"id": 1})"), 1);
    CHECK(v.out().empty());  // the question just answered waits, even with timeout_ms 0
    v.send(record(R"({"id": 2})"), 0);
    CHECK(v.out() == std::vector<value>{record(R"({"id": 1})")});
    CHECK(v.out(1).empty());  // the answers given agree: no disagreement
    v.send(record(R"({"id": 1})"), 2);  // too late: dropped
    CHECK(v.out().size() == 1);
  }

  TEST_CASE("its timer: one wake-up for the oldest question; on_timer decides what is past timeout_ms") {
    loom::test::running v("flow.vote", {{"branches", 3}, {"quorum", 2}, {"timeout_ms", 0}, {"key", ".id"}});
    v.start();
    CHECK(v.ctx.wakes.empty());  // nothing pending: no timer
    v.send(record(R"({"id": 1})"), 0);
    v.send(record(R"({"id": 1})"), 1);
    REQUIRE(v.ctx.wakes.size() == 1);  // at the first answer, not again at the second
    CHECK(v.ctx.wakes[0] <= std::chrono::nanoseconds{0});
    CHECK(v.out().empty());
    v.node->on_timer(v.ctx);  // no value arrived, no input ended: the timer decides
    CHECK(v.out() == std::vector<value>{record(R"({"id": 1})")});
    CHECK(v.ctx.wakes.size() == 1);  // nothing pending: not asked again
    // Timers are not replayed after a restart: what one decided is in the checkpoint.
    REQUIRE(v.ctx.checkpointed.is_map());
    CHECK(v.ctx.checkpointed.find("pending")->as_list().empty());

    with_tools w("flow.vote", {{"branches", 2}, {"timeout_ms", 3600000}, {"key", ".id"}});
    w.start();
    w.send(record(R"({"id": 1})"), 0);
    w.send(record(R"({"id": 2})"), 0);
    REQUIRE(w.ctx.wakes.size() == 1);  // one at a time
    CHECK(w.ctx.wakes[0] > std::chrono::minutes(59));
    w.node->on_timer(w.ctx);  // early (not past the hour): decides nothing, asks again
    CHECK(w.out().empty());
    CHECK(w.ctx.wakes.size() == 2);
  }

  TEST_CASE("an input that ends decides what waits on it; finish decides the rest") {
    with_tools v("flow.vote", {{"branches", 2}, {"quorum", 1}});
    v.start();
    v.send(value{"x"}, 0);
    v.send(value{"y"}, 0);
    v.node->on_input_closed(v.ctx, 1);
    CHECK(v.out() == std::vector<value>{value{"x"}, value{"y"}});
    with_tools w("flow.vote", {{"branches", 2}, {"quorum", 1}, {"timeout_ms", 3600000}});
    w.start();
    w.send(value{"x"}, 1);
    w.node->on_finish(w.ctx);
    CHECK(w.out() == std::vector<value>{value{"x"}});
    REQUIRE(w.ctx.out[1].empty());  // only b answered, and nobody disagreed
  }

  TEST_CASE("no quorum with `disagree` unconnected fails, naming the node; a decided split is only counted") {
    with_tools v("flow.vote", {{"branches", 3}});
    v.ctx.wired[1] = false;
    v.start();
    v.send(value{1}, 0);
    v.send(value{1}, 1);
    v.send(value{2}, 2);
    CHECK(v.out() == std::vector<value>{value{1}});
    v.send(value{1}, 0);
    v.send(value{2}, 1);
    CHECK_THROWS_WITH_AS(v.send(value{3}, 2), doctest::Contains("flow.vote `under_test`: no quorum (2 of 3"),
                         std::runtime_error);
  }

  TEST_CASE("counters give the agreement rates: questions by outcome, answers by input and agreement") {
    with_tools v("flow.vote", {{"branches", 2}, {"quorum", 1}, {"timeout_ms", 3600000}});
    // Counters are per node name and process-wide: this test's node has its own name.
    auto before = [&](const char* o) { return counter("under_test", "loom_vote_questions_total", "outcome", o); };
    auto u0 = before("unanimous"), m0 = before("majority");
    auto no_b0 = counter("under_test", "loom_vote_answers_total", "agrees", "no", "b");
    auto miss_b0 = counter("under_test", "loom_vote_answers_total", "agrees", "missing", "b");
    v.start();
    v.send(value{1}, 0);
    v.send(value{1}, 1);
    v.send(value{1}, 0);
    v.send(value{2}, 1);
    v.send(value{1}, 0);
    v.node->on_finish(v.ctx);
    CHECK(before("unanimous") - u0 == 1);
    CHECK(before("majority") - m0 == 2);  // quorum 1: a split decides for a; the lone answer too
    CHECK(counter("under_test", "loom_vote_answers_total", "agrees", "no", "b") - no_b0 == 1);
    CHECK(counter("under_test", "loom_vote_answers_total", "agrees", "missing", "b") - miss_b0 == 1);
  }

  TEST_CASE("a restarted vote goes on from its checkpoint: the pending answers come back") {
    loom::test::running v("flow.vote", {{"key", ".id"}, {"answer", ".id"}, {"timeout_ms", 3600000}});
    v.start();
    for (int i = 0; i < 64; ++i) v.send(value{value_map{{"id", i}, {"from", "a"}}}, 0);
    REQUIRE(v.ctx.checkpointed.is_map());  // every 64 values while questions are pending
    auto wakes = v.ctx.wakes.size();
    v.restart(v.ctx.checkpointed);
    v.start();
    CHECK(v.ctx.wakes.size() == wakes + 1);  // its restored questions' timer, asked for again
    v.send(value{value_map{{"id", 5}, {"from", "b"}}}, 1);
    CHECK(v.out() == std::vector<value>{value{value_map{{"id", 5}, {"from", "a"}}}});
    v.finish();
    CHECK(v.out().size() == 1);  // quorum 2 of 2: the 63 questions only a answered are not decided
    CHECK(v.out(1).size() == 63);
  }

  TEST_CASE("a quorum above the branches, or compare: jq without `same`, is refused at construction") {
    CHECK_THROWS_WITH_AS(with_tools("flow.vote", {{"branches", 2}, {"quorum", 3}}),
                         doctest::Contains("quorum 3 is more than its 2 branches"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(with_tools("flow.vote", {{"compare", "jq"}}), doctest::Contains("compare: jq needs `same`"),
                         std::invalid_argument);
  }
}

// The same kinds in the real runtime (CAF actors, real tool nodes, runs of values).
TEST_SUITE("flow.call and flow.vote in the runtime" * doctest::timeout(60)) {
  TEST_CASE("500 records priced by a tool with 8 calls in flight come out in order, exactly") {
    loom::test::graph_runner g;
    auto r = g.run_yaml(R"yaml(
graph: priced
nodes:
  src: {kind: source.sequence, params: {count: 500}}
  calc: {kind: tool.calculator}
  price:
    kind: flow.call
    tools: [calc]
    params: {args: '{expression: "\(.) * 3 + 0.5"}', max_in_flight: 8}
  got: {kind: test.collect}
edges: [src -> price -> got]
)yaml");
    INFO(r.error);
    REQUIRE(r.ok());
    auto got = g.sink->snapshot();
    REQUIRE(got.size() == 500);
    for (std::size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].find("result")->as_float() == static_cast<double>(i) * 3 + 0.5);
    }
  }

  TEST_CASE("a failure injected into flow.call's attempts is retried: every record once, in order") {
    loom::test::graph_runner g;
    std::mutex m;
    std::map<std::uint32_t, int> seen;
    loom::local::run_options o;
    // Instances are numbered in the graph's node order: `price` is instance 2.
    o.inject = [&](std::uint32_t i, loom::local::fault_site s, int attempt) {
      std::lock_guard lock(m);
      if (i == 2 && s == loom::local::fault_site::message && ++seen[i] % 37 == 0 && attempt < 3)
        throw std::runtime_error("injected");
    };
    loom::graph::diagnostics d;
    auto graph = loom::graph::load_graph_text(R"yaml(
graph: retried
nodes:
  src: {kind: source.sequence, params: {count: 200}}
  calc: {kind: tool.calculator}
  price:
    kind: flow.call
    tools: [calc]
    restarts: 20
    params: {args: '{expression: "\(.) + 1"}', max_in_flight: 4}
  got: {kind: test.collect}
edges: [src -> price -> got]
)yaml",
                                              "retried.yaml", d);
    REQUIRE(graph.has_value());
    auto r = g.run(*graph, o);
    INFO(r.error);
    REQUIRE(r.ok());
    auto got = g.sink->snapshot();
    REQUIRE(got.size() == 200);
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].find("result")->as_int() == static_cast<std::int64_t>(i) + 1);
    std::uint64_t restarts = 0;
    for (const auto& s : r.nodes)
      if (s.node == "price") restarts += s.restarts;
    CHECK(restarts == 3);  // every 37th value failed once, until the third restart
  }

  TEST_CASE("a vote over a jq branch and a tool branch, matched by key, decides every record") {
    loom::test::graph_runner g;
    auto r = g.run_yaml(R"yaml(
graph: voted
nodes:
  src: {kind: source.sequence, params: {count: 300}}
  rec: {kind: flow.jq, params: {program: '{n: ., id: (1234567890123456789)}'}}
  by_jq: {kind: flow.jq, params: {program: '{n, v: (.n * 2)}'}}
  calc: {kind: tool.calculator}
  by_tool:
    kind: flow.call
    tools: [calc]
    params: {args: '{expression: "\(.n) + \(.n)"}', into: r, ordered: false}
  shape: {kind: flow.jq, params: {program: '{n, v: .r.result}'}}
  vote:
    kind: flow.vote
    params: {key: .n, answer: .v, compare: numeric}
  got: {kind: test.collect}
edges:
  - src -> rec -> [by_jq, by_tool]
  - by_jq -> vote.a
  - by_tool -> shape -> vote.b
  - vote -> got.in
  - vote.disagree -> got.aux
)yaml");
    INFO(r.error);
    REQUIRE(r.ok());
    auto got = g.sink->snapshot();
    REQUIRE(got.size() == 300);
    std::set<std::int64_t> ns;
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(g.sink->ports[i] == 0u);  // no disagreement
      ns.insert(got[i].find("n")->as_int());
      CHECK(got[i].find("v")->as_int() == 2 * got[i].find("n")->as_int());
    }
    CHECK(ns.size() == 300);
  }
}
