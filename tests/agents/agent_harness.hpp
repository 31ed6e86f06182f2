// tests/agents/agent_harness.hpp: runs one agent.llm node outside any runtime. Its context is the actors
// harness's fake context plus tools: each tool is a kind_spec (for its call_spec) and a handler; calls are
// answered at once (inside ctx.call) or queued until the test runs them, in order or out of order, so both
// orders of the asynchronous contract are exercised. Requests are checked against the tool's arguments as
// the runtime checks them (check_call_request).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/params.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::test {

struct fake_tool {
  graph::kind_spec spec;
  std::function<value(const value&)> handler;  // throw to answer with an error
  std::vector<value> requests;                  // what it was called with (after checking)
};

// A tool kind with one call_spec; `args` are its arguments.
inline graph::kind_spec tool_spec(std::string doc, std::vector<graph::param_spec> args) {
  graph::kind_spec s;
  s.name = "test.tool";
  s.doc = "a test tool";
  s.call = graph::call_spec{std::move(doc), std::move(args)};
  return s;
}

class tool_context final : public context {
 public:
  explicit tool_context(std::size_t outputs) : out(outputs), wired(outputs, true) {}

  void emit(std::size_t port, value v) override {
    if (port >= out.size()) throw std::logic_error("emit on port " + std::to_string(port));
    out[port].push_back(std::move(v));
  }
  bool connected(std::size_t port) const override { return port < wired.size() && wired[port]; }
  std::size_t budget() const override { return 1000; }
  void pause_for(std::chrono::nanoseconds) override {}
  void wake_after(std::chrono::nanoseconds d) override { wakes.push_back(d); }
  std::string_view node_name() const override { return "agent"; }
  int instance() const override { return 0; }
  int replicas() const override { return 1; }
  bool stopping() const override { return false; }

  std::vector<std::string> tools() const override { return order; }
  const graph::kind_spec* tool_kind(std::string_view tool) const override {
    auto it = table.find(std::string(tool));
    return it == table.end() ? nullptr : &it->second.spec;
  }
  void call(std::string_view tool, value request, std::chrono::milliseconds timeout, call_done done) override {
    ++calls_made;
    timeouts.push_back(timeout);
    auto it = table.find(std::string(tool));
    call_result r;
    if (it == table.end()) {
      r.error = "`" + std::string(tool) + "` is not a tool of this node";
    } else {
      try {
        value checked = check_call_request(*it->second.spec.call, request);
        it->second.requests.push_back(checked);
        r.reply = it->second.handler(checked);
        r.ok = true;
      } catch (const std::exception& e) {
        r.error = e.what();
      }
    }
    if (queue_calls)
      queued.push_back([done = std::move(done), r = std::move(r)](context& c) mutable { done(c, std::move(r)); });
    else
      done(*this, std::move(r));
  }

  void add_tool(const std::string& name, graph::kind_spec spec, std::function<value(const value&)> handler) {
    order.push_back(name);
    table[name] = fake_tool{std::move(spec), std::move(handler), {}};
  }
  // Runs the queued replies, last first when `reverse`; replies may queue more calls (the next turn).
  void run_queued(bool reverse = false) {
    while (!queued.empty()) {
      std::deque<std::function<void(context&)>> now;
      now.swap(queued);
      if (reverse) std::reverse(now.begin(), now.end());
      for (auto& f : now) f(*this);
    }
  }

  std::vector<std::vector<value>> out;
  std::vector<bool> wired;
  std::vector<std::string> order;
  std::map<std::string, fake_tool> table;
  bool queue_calls = false;
  std::deque<std::function<void(context&)>> queued;
  int calls_made = 0;
  std::vector<std::chrono::milliseconds> timeouts;
  std::vector<std::chrono::nanoseconds> wakes;  // every ctx.wake_after()
};

inline const registry& builtin_kinds() {
  static const registry r = [] {
    registry reg;
    actors::register_builtins(reg);
    return reg;
  }();
  return r;
}

// The node_init the runtime would build for agent.llm named `name` with these params (defaults filled).
inline node_init agent_init(graph::config_map given, std::string name = "agent") {
  const kind_def* def = builtin_kinds().find("agent.llm");
  REQUIRE(def != nullptr);
  for (const auto& p : def->spec.params)
    if (p.default_value && graph::config(given).find(p.name) == nullptr) given.emplace_back(p.name, *p.default_value);
  graph::config as_written(std::move(given));
  node_init init;
  init.name = std::move(name);
  init.outputs = def->spec.output_ports(as_written).size();
  init.params = params(to_value(as_written).as_map());
  return init;
}

// One agent.llm node and its context.
class agent_under_test {
 public:
  explicit agent_under_test(graph::config_map given, std::string name = "agent")
      : init_(agent_init(std::move(given), std::move(name))),
        ctx(init_.outputs),
        node(builtin_kinds().find("agent.llm")->make(init_)) {}

  void send(value v) { node->on_message(ctx, 0, v); }
  std::vector<value>& out(std::size_t port = 0) { return ctx.out.at(port); }
  // The one result on `out`, as a map field.
  const value& field(std::string_view f, std::size_t i = 0) {
    REQUIRE(out().size() > i);
    const value* v = out()[i].find(f);
    REQUIRE(v != nullptr);
    return *v;
  }
  std::string text(std::size_t i = 0) { return field("text", i).as_string(); }

 private:
  node_init init_;

 public:
  tool_context ctx;
  std::unique_ptr<loom::node> node;
};

// A rule as config: {match: m, reply: r} and friends.
inline graph::config reply_rule(std::string match, std::string reply, std::string when = "") {
  graph::config_map m;
  if (!match.empty()) m.emplace_back("match", match);
  if (!when.empty()) m.emplace_back("when", when);
  m.emplace_back("reply", reply);
  return graph::config(std::move(m));
}
inline graph::config call_rule(std::string match, std::string tool, graph::config_map args, std::string when = "") {
  graph::config_map m;
  if (!match.empty()) m.emplace_back("match", match);
  if (!when.empty()) m.emplace_back("when", when);
  m.emplace_back("call", graph::config_map{{"tool", tool}, {"arguments", std::move(args)}});
  return graph::config(std::move(m));
}
inline graph::config rules(graph::config_list l) { return graph::config(std::move(l)); }

}  // namespace loom::test
