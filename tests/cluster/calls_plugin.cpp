// tests/cluster/calls_plugin.cpp: two kinds for the cross-host call tests, loaded by the driver and every
// worker with --plugin (like examples/plugin):
//   test.slow_tool: a tool that sleeps `delay_ms` in each call it runs and answers its request;
//   test.asker: calls its one tool with {n: input} (timeout `timeout_ms`) and emits the reply, or
//               "error: ..." when the call failed or timed out.
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "loom/runtime/registry.hpp"

namespace {

class slow_tool final : public loom::node {
 public:
  explicit slow_tool(const loom::params& p) : delay_(p.get_int("delay_ms")) {}
  loom::value on_call(loom::context&, const loom::value& request) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_));
    return request;
  }

 private:
  std::int64_t delay_;
};

class asker final : public loom::node {
 public:
  explicit asker(const loom::params& p) : timeout_(p.get_int("timeout_ms")) {}
  void on_message(loom::context& ctx, std::size_t, const loom::value& v) override {
    ctx.call(ctx.tools().at(0), loom::value{loom::value_map{{"n", v}}}, timeout_, [](loom::context& c, loom::call_result r) {
      c.emit(0, r.ok ? r.reply : loom::value("error: " + r.error));
    });
  }

 private:
  std::chrono::milliseconds timeout_;
};

}  // namespace

extern "C" void loom_register(loom::registry& r) {
  using loom::graph::param_spec;
  loom::graph::kind_spec tool;
  tool.name = "test.slow_tool";
  tool.doc = "answers each call with its request after delay_ms";
  tool.params = {param_spec::integer("delay_ms", "sleep in each call").def(0)};
  tool.blocking = true;  // one call per mailbox turn: a cancel that came in meanwhile is seen first
  tool.call = loom::graph::call_spec{"Echoes its request, slowly.", {param_spec::integer("n", "a number").require()}};
  r.add({std::move(tool), [](const loom::node_init& i) { return std::make_unique<slow_tool>(i.params); }});
  loom::graph::kind_spec ask;
  ask.name = "test.asker";
  ask.doc = "calls its tool with each input and emits the reply or the error";
  ask.inputs = {{"in", "requests"}};
  ask.outputs = {{"out", "replies, or \"error: ...\""}};
  ask.params = {param_spec::integer("timeout_ms", "each call's timeout").def(2000)};
  r.add({std::move(ask), [](const loom::node_init& i) { return std::make_unique<asker>(i.params); }});
}
