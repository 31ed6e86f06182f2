// Tests of the flow kinds: flow.forward, flow.batch, flow.gather, flow.router, flow.throttle, flow.jq.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "loom/runtime/json.hpp"
#include "tests/actors/harness.hpp"

using loom::value;
using loom::value_list;
using loom::value_map;
using loom::graph::config_map;
using loom::test::ints;
using loom::test::running;

namespace {

void send_all(running& n, const std::vector<value>& values) {
  for (const auto& v : values) n.send(v);
}

}  // namespace

TEST_SUITE("flow.forward" * doctest::timeout(10)) {
  TEST_CASE("emits what it receives, sharing the payload") {
    running n("flow.forward", {});
    value s("a payload that is shared, not copied");
    n.send(s);
    n.send(2);
    REQUIRE(n.out().size() == 2);
    CHECK(n.out()[0].shares_payload_with(s));
    CHECK(n.out()[1] == value(2));
  }
}

TEST_SUITE("flow.batch" * doctest::timeout(10)) {
  TEST_CASE("emits lists of size values and flushes the partial last one at finish") {
    running n("flow.batch", {{"size", 3}});
    send_all(n, ints(0, 7));
    CHECK(n.out() == std::vector<value>{value_list(ints(0, 3)), value_list(ints(3, 6))});
    n.finish();
    CHECK(n.out() == std::vector<value>{value_list(ints(0, 3)), value_list(ints(3, 6)), value_list{6}});
  }

  TEST_CASE("finish after a full batch emits nothing more") {
    running n("flow.batch", {{"size", 2}});
    send_all(n, ints(0, 4));
    n.finish();
    CHECK(n.out().size() == 2);
  }

  TEST_CASE("size defaults to 16") {
    running n("flow.batch", {});
    send_all(n, ints(0, 16));
    REQUIRE(n.out().size() == 1);
    CHECK(n.out()[0].as_list().size() == 16);
  }
}

TEST_SUITE("flow.gather" * doctest::timeout(10)) {
  TEST_CASE("collects count values into one list, then starts over") {
    running n("flow.gather", {{"count", 2}});
    send_all(n, ints(0, 5));
    CHECK(n.out() == std::vector<value>{value_list(ints(0, 2)), value_list(ints(2, 4))});
    n.finish();
    CHECK(n.out().back() == value(value_list{4}));
  }

  TEST_CASE("sort_by puts each list in the order of a field, whatever the arrival order") {
    running n("flow.gather", {{"count", 3}, {"sort_by", "role"}});
    send_all(n, {value(value_map{{"role", "ops"}}), value(value_map{{"role", "finance"}}), value(7)});
    REQUIRE(n.out().size() == 1);
    CHECK(n.out()[0] == value(value_list{value(value_map{{"role", "finance"}}), value(value_map{{"role", "ops"}}), 7}));
  }

  TEST_CASE("finish with nothing gathered emits nothing") {
    running n("flow.gather", {{"count", 3}});
    n.finish();
    CHECK(n.out().empty());
  }
}

TEST_SUITE("flow.router" * doctest::timeout(10)) {
  const config_map routes{{"cat", "animals"}, {"dog", "animals"}, {"7", "numbers"}, {"true", "flags"}};

  TEST_CASE("its output ports are the distinct route targets in order, then default") {
    const auto* spec = loom::test::builtins().find_kind("flow.router");
    REQUIRE(spec != nullptr);
    auto ports = spec->output_ports(config_map{{"routes", routes}});
    std::vector<std::string> names;
    for (auto& p : ports) names.push_back(p.name);
    CHECK(names == std::vector<std::string>{"animals", "numbers", "flags", "default"});
    REQUIRE(spec->outputs.size() == 1);
    CHECK(spec->outputs[0].name == "default");
  }

  TEST_CASE("routes on the value itself rendered as text") {
    running n("flow.router", {{"routes", routes}});
    REQUIRE(n.ctx.out.size() == 4);
    send_all(n, {"cat", 7, "dog", true, "7", 8});
    CHECK(n.out(0) == std::vector<value>{"cat", "dog"});
    CHECK(n.out(1) == std::vector<value>{7, "7"});
    CHECK(n.out(2) == std::vector<value>{true});
    CHECK(n.out(3) == std::vector<value>{8});
  }

  TEST_CASE("routes on a field of a map value; a map without the field goes to default") {
    running n("flow.router", {{"field", "kind"}, {"routes", routes}});
    value cat(value_map{{"kind", "cat"}, {"name", "tom"}});
    value nameless(value_map{{"name", "x"}});
    send_all(n, {cat, nameless, "cat"});
    CHECK(n.out(0) == std::vector<value>{cat});
    CHECK(n.out(3) == std::vector<value>{nameless, "cat"});
  }

  TEST_CASE("an unmatched value with default unconnected is an error naming the value") {
    running n("flow.router", {{"routes", routes}});
    n.ctx.wired[3] = false;
    n.send("cat");
    CHECK_THROWS_WITH_AS(n.send("horse"), doctest::Contains("no route for value `horse`"),
                         std::runtime_error);
    CHECK(n.out(0).size() == 1);
  }

  TEST_CASE("unmatched: fail fails on an unmatched value even with default connected") {
    running n("flow.router", {{"routes", routes}, {"unmatched", "fail"}});
    n.send("cat");
    CHECK_THROWS_WITH_AS(n.send("horse"), "no route for value `horse` and `unmatched: fail`", std::runtime_error);
    CHECK(n.out(3).empty());
  }

  TEST_CASE("default declares that a value sent there while unconnected fails the run, unless unmatched: fail") {
    using loom::graph::if_unconnected;
    const auto* spec = loom::test::builtins().find_kind("flow.router");
    REQUIRE(spec != nullptr);
    auto ports = spec->output_ports(loom::graph::config(config_map{{"routes", config_map{{"a", "x"}}}}));
    REQUIRE(ports.size() == 2);
    CHECK(ports[1].name == "default");
    CHECK(ports[1].unconnected == if_unconnected::warn);
    auto meant = spec->output_ports(
        loom::graph::config(config_map{{"routes", config_map{{"a", "x"}}}, {"unmatched", "fail"}}));
    CHECK(meant[1].unconnected == if_unconnected::ignore);
    // No route to another port: every value goes to `default`, which must then be connected.
    for (const auto& only : {config_map{}, config_map{{"a", "default"}}}) {
      auto all = spec->output_ports(loom::graph::config(config_map{{"routes", only}}));
      REQUIRE(all.size() == 1);
      CHECK(all[0].unconnected == if_unconnected::error);
    }
    // Routes not yet valid (a number for a port) are the param check's to report, not this one's.
    auto broken = spec->output_ports(loom::graph::config(config_map{{"routes", config_map{{"a", 3}}}}));
    CHECK(broken[0].unconnected == if_unconnected::warn);
  }

  TEST_CASE("a route that does not name a port is an error naming its key") {
    CHECK_THROWS_WITH_AS(running("flow.router", {{"routes", config_map{{"a", 3}}}}),
                         doctest::Contains("routes: `a` must name an output port"), std::invalid_argument);
  }

  TEST_CASE("a route to default sends there") {
    running n("flow.router", {{"routes", config_map{{"a", "x"}, {"b", "default"}}}});
    REQUIRE(n.ctx.out.size() == 2);
    send_all(n, {"a", "b"});
    CHECK(n.out(0) == std::vector<value>{"a"});
    CHECK(n.out(1) == std::vector<value>{"b"});
  }
}

TEST_SUITE("flow.throttle" * doctest::timeout(10)) {
  TEST_CASE("emits each value, then pauses until the next one is due at 1s / rate") {
    using std::chrono::milliseconds;
    running n("flow.throttle", {{"rate", 4.0}});
    send_all(n, {1, 2});  // the fake context does not wait: the second value comes early
    CHECK(n.out() == ints(1, 3));
    REQUIRE(n.ctx.pauses.size() == 2);
    CHECK(n.ctx.pauses[0] > milliseconds(200));
    CHECK(n.ctx.pauses[0] <= milliseconds(250));
    CHECK(n.ctx.pauses[1] > milliseconds(450));  // due at start + 2/rate
    CHECK(n.ctx.pauses[1] <= milliseconds(500));
  }

  TEST_CASE("a value that comes late is not held back for a whole gap") {
    running n("flow.throttle", {{"rate", 100.0}});
    n.send(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(15));  // the runtime woke it 5 ms late (or later)
    n.send(2);
    REQUIRE(n.ctx.pauses.size() >= 1);
    CHECK(n.ctx.pauses[0] > std::chrono::milliseconds(9));  // the first value waited a whole gap
    if (n.ctx.pauses.size() == 2) CHECK(n.ctx.pauses[1] < std::chrono::milliseconds(10));  // the second: less
    CHECK(n.out().size() == 2);
  }

  TEST_CASE("a slow rate pauses for seconds") {
    running n("flow.throttle", {{"rate", 0.5}});
    n.send(1);
    REQUIRE(n.ctx.pauses.size() == 1);
    CHECK(n.ctx.pauses[0] > std::chrono::milliseconds(1900));
    CHECK(n.ctx.pauses[0] <= std::chrono::seconds(2));
  }
}

TEST_SUITE("flow.jq" * doctest::timeout(10)) {
  value record(std::string_view json) { return loom::from_json(nlohmann::ordered_json::parse(json)); }

  TEST_CASE("select filters: a value the program gives nothing for is dropped") {
    running n("flow.jq", {{"program", "select(.x > 1)"}});
    for (int x : {0, 2, 1, 3}) n.send(value{value_map{{"x", x}}});
    CHECK(n.out() == std::vector<value>{value{value_map{{"x", 2}}}, value{value_map{{"x", 3}}}});
  }

  TEST_CASE("a program maps each value, keeping the fields' order") {
    running n("flow.jq", {{"program", "{id, total: (.price * .qty)}"}});
    n.send(record(R"({"qty": 3, "id": "a7", "price": 2.5})"));
    REQUIRE(n.out().size() == 1);
    CHECK(loom::to_json_line(n.out()[0]) == R"({"id":"a7","total":7.5})");
  }

  TEST_CASE("every output of the program is emitted, in order: .items[] flattens") {
    running n("flow.jq", {{"program", ".items[]"}});
    n.send(record(R"({"items": [1, "two", {"three": 3}]})"));
    n.send(record(R"({"items": []})"));
    n.send(record(R"({"items": [4]})"));
    CHECK(n.out() == std::vector<value>{1, "two", value{value_map{{"three", 3}}}, 4});
  }

  TEST_CASE("a run of values is handled as one step, each value's outputs in order") {
    running n("flow.jq", {{"program", ". , . * 10"}});
    CHECK(n.node->handles_runs());
    auto in = ints(1, 4);
    n.node->on_run(n.ctx, 0, in);
    CHECK(n.out() == std::vector<value>{1, 10, 2, 20, 3, 30});
  }

  TEST_CASE("args are the program's $NAMEs, of any type") {
    running n("flow.jq", {{"program", "select(.x > $min) | {x, tag: $tag, ids: $ids}"},
                          {"args", loom::graph::config(config_map{{"min", 1}, {"tag", "big"},
                                                                  {"ids", loom::graph::config(loom::graph::config_list{7, 8})}})}});
    n.send(value{value_map{{"x", 1}}});
    n.send(value{value_map{{"x", 5}}});
    REQUIRE(n.out().size() == 1);
    CHECK(loom::to_json_line(n.out()[0]) == R"({"x":5,"tag":"big","ids":[7,8]})");
  }

  TEST_CASE("a jq error names the node, the value and jq's message") {
    running n("flow.jq", {{"program", ".x + 1"}});
    n.send(value{value_map{{"x", 1}}});
    CHECK(n.out() == std::vector<value>{2});
    CHECK_THROWS_WITH(n.send(value{value_map{{"x", "one"}}}),
                      R"(flow.jq `under_test`: jq failed on value {"x":"one"}: string ("one") and number (1) cannot be added)");
    n.send(value{value_map{{"x", 2}}});  // the same jq_state goes on (a restarted node would too)
    CHECK(n.out() == std::vector<value>{2, 3});
  }

  TEST_CASE("an output nested deeper than 512 levels is an error, not a stack overflow") {
    running n("flow.jq", {{"program", "reduce range(600) as $i (0; [.])"}});
    CHECK_THROWS_WITH(n.send(1), "flow.jq `under_test`: jq failed on value 1: the program gave a value nested "
                                 "deeper than 512 levels");
  }

  TEST_CASE("halt ends a value's outputs; halt_error is an error with its message") {
    running n("flow.jq", {{"program", "if . == 2 then halt elif . == 3 then \"three\\n\" | halt_error else . end"}});
    n.send(1);
    n.send(2);
    CHECK(n.out() == std::vector<value>{1});
    CHECK_THROWS_WITH(n.send(3), "flow.jq `under_test`: jq failed on value 3: three");
    // libjq 1.6 would free the halt's message again on each later value (a double free): it goes on.
    for (int i = 4; i < 8; ++i) n.send(i);
    CHECK_THROWS_WITH(n.send(3), "flow.jq `under_test`: jq failed on value 3: three");
    n.send(2);
    n.send(8);
    CHECK(n.out() == std::vector<value>{1, 4, 5, 6, 7, 8});
  }

  TEST_CASE("error(...) in the program is reported with its message") {
    running n("flow.jq", {{"program", R"jq(if .ok then . else error("not ok: \(.id)") end)jq"}});
    CHECK_THROWS_WITH(n.send(record(R"({"ok": false, "id": 3})")),
                      R"(flow.jq `under_test`: jq failed on value {"ok":false,"id":3}: not ok: 3)");
  }

  TEST_CASE("a program that does not compile fails at construction with jq's message") {
    CHECK_THROWS_WITH(running("flow.jq", {{"program", "select(.x > 1) |||"}}),
                      doctest::Contains("flow.jq `under_test`: program: syntax error, unexpected '|'"));
  }

  TEST_CASE("a 19-digit integer and 1/3 survive the trip unchanged") {
    value in = record(R"({"id": 1234567890123456789, "third": 0.3333333333333333, "neg": -9223372036854775807,
                          "n": 2, "big": 9007199254740993, "f": 0.1})");
    REQUIRE(in.find("id")->as_int() == 1234567890123456789);
    for (const char* program : {".", "{id, third, neg, n, big, f}", ".id, .third"}) {
      CAPTURE(program);
      running n("flow.jq", {{"program", program}});
      n.send(in);
      REQUIRE(!n.out().empty());
      if (n.out()[0].is_map()) {
        CHECK(n.out()[0] == in);
      } else {
        REQUIRE(n.out().size() == 2);
        CHECK(n.out()[0].is_int());
        CHECK(n.out()[0].as_int() == 1234567890123456789);
        CHECK(n.out()[1].as_float() == 1.0 / 3);
      }
    }
  }

  TEST_CASE("a 19-digit integer of the args is given back exactly too") {
    running n("flow.jq", {{"program", "{id: $id, x}"}, {"args", loom::graph::config(config_map{{"id", std::int64_t{1234567890123456789}}})}});
    n.send(value{value_map{{"x", 1}}});
    REQUIRE(n.out().size() == 1);
    CHECK(n.out()[0].find("id")->as_int() == 1234567890123456789);
  }

  TEST_CASE("arithmetic on a 19-digit integer sees jq's double (jq 1.6 holds every number as a double)") {
    running n("flow.jq", {{"program", ".id + 1, .id - .id, (.a == .b)"}});
    // Two integers that become the same double: neither is given back for it.
    n.send(record(R"({"id": 1234567890123456789, "a": 1234567890123456788, "b": 1234567890123456789})"));
    REQUIRE(n.out().size() == 3);
    CHECK(n.out()[0] == value{std::int64_t{1234567890123456768}});  // the double, not 1234567890123456790
    CHECK(n.out()[1] == value{0});
    CHECK(n.out()[2] == value{true});  // jq compares the doubles
  }

  TEST_CASE("integral numbers come back as integers, others as floats; bytes keep their JSON form") {
    running n("flow.jq", {{"program", "."}});
    n.send(value{value_list{value{2.0}, value{2.5}, value{1e300}}});
    n.send(value{loom::bytes{std::byte{1}, std::byte{2}}});
    REQUIRE(n.out().size() == 2);
    CHECK(n.out()[0] == value{value_list{value{2}, value{2.5}, value{1e300}}});
    CHECK(n.out()[1] == value{loom::bytes{std::byte{1}, std::byte{2}}});
  }
}
