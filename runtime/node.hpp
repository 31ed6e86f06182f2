// runtime/node.hpp: the actor contract. Every node of a graph, whatever it computes, is a `node`: the
// runtime hands it one message at a time on an input port and it emits zero or more values on its output
// ports through the `context`. It never learns where its peers run or how values travel.
//
// Life of a node:   on_start -> (on_message | on_pull | on_timer)* -> on_input_closed per port -> on_finish
// - A node with no inputs (a source) is pulled: on_pull() emits up to ctx.budget() values and returns true
//   while it has more. A node with inputs gets on_message() for each value, in order per edge.
// - When every edge into a port has ended, on_input_closed(port); when all ports have, on_finish(): flush
//   what is held (a partial batch) and the runtime then closes the outputs. Sources get on_finish() too.
// - An exception thrown from any of these fails the run, naming the node and the input port, unless the
//   node's restart policy allows a restart (a fresh instance from the factory gets the same message again).
//   What the failed attempt emitted is discarded, never sent (docs/design.md, "Restarts").
// - A node that asked for it (ctx.wake_after) gets on_timer() between its inputs, even while they stay open
//   and nothing arrives: deadlines (flow.vote's timeout_ms).
// - A node that waits for a person (human.approve, an agent's approve_tools) asks with ctx.ask(id, shown) and
//   gets on_decision() when someone decides (`loom approve`, docs/durability.md "People in the loop"). It
//   does not finish while a decision is pending.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loom/graph/kind_spec.hpp"

#include "loom/runtime/params.hpp"
#include "loom/runtime/value.hpp"

namespace loom {

namespace observe {
class span_buffer;
}

// The outcome of a call to a tool: its reply, or what went wrong (the tool threw, timed out, is gone).
struct call_result {
  bool ok = false;
  value reply;
  std::string error;
};

// What a person decided about a value a node asked about (context::ask).
struct decision {
  enum class verdict : std::uint8_t { approve, reject, edit };
  verdict what = verdict::approve;
  value edited;        // edit: the value that goes on instead
  std::string reason;  // reject: why (may be empty)
  std::string by;      // who decided ("user@host", "timeout")
};
const char* to_string(decision::verdict v);
// "approve", "reject" or "edit" as a verdict; nullopt for anything else.
std::optional<decision::verdict> verdict_of(std::string_view text);
// The wall clock in milliseconds since the Unix epoch: how decisions count their deadlines (ask's
// deadline_unix_ms, which time spent with no process running the run counts too) and how a state file
// stamps its rows.
std::int64_t unix_ms_now();

class context {
 public:
  virtual ~context() = default;

  // Sends `v` on output port `port` (index into the kind's outputs). Never blocks: flow control is the
  // runtime's; a node that emits more than its budget is held back before its next input.
  virtual void emit(std::size_t port, value v) = 0;
  void emit(value v) { emit(0, std::move(v)); }
  // Sends each of `values` on `port`, in order: the same as emitting them one by one, in one step (the
  // runtime appends them to a batch at once; payloads are shared, not copied).
  virtual void emit_run(std::size_t port, std::span<const value> values) {
    for (const auto& v : values) emit(port, v);
  }

  // True when at least one edge leaves output port `port`.
  virtual bool connected(std::size_t port) const = 0;

  // How many values the node can emit now without exceeding any output edge's capacity (sources).
  virtual std::size_t budget() const = 0;

  // Delivers nothing to this node (and stops pulling it) for `d`: rate limits (flow.throttle).
  virtual void pause_for(std::chrono::nanoseconds d) = 0;

  // Asks for one on_timer() no sooner than `d` from now. Calls made before it runs give one on_timer, at
  // the earliest time asked; a node that wants another asks again (from on_timer). It runs like an input:
  // between handlers, as an attempt (a throw restarts the node and the fresh one gets on_timer again; its
  // emits wait for credits like any). It is dropped once the node's inputs have ended (on_finish runs
  // instead), when the run stops, and when the node restarts: a restarted node asks again from its restored
  // state (in on_start). Timers are not replayed, so a stateful kind whose on_timer changes its state
  // checkpoints there. A node that never asks pays nothing. A context without timers (`loom inspect`'s)
  // ignores it.
  virtual void wake_after(std::chrono::nanoseconds d) {}

  virtual std::string_view node_name() const = 0;
  virtual int instance() const = 0;  // 0 .. replicas-1
  virtual int replicas() const = 0;
  // True once the run is being stopped (SIGINT, another node failed): sources should stop emitting.
  virtual bool stopping() const = 0;

  // -- calls: how an agent uses its tools (the graph's `tools: [...]`) ----------------------------------
  // The tool nodes this node may call, in the order the graph lists them.
  virtual std::vector<std::string> tools() const { return {}; }
  // The kind of a tool node (its call_spec says its arguments), or nullptr for a name not in tools().
  virtual const graph::kind_spec* tool_kind(std::string_view tool) const { return nullptr; }
  // Sends `request` (a map of the tool's arguments) to tool node `tool`. `done` runs later on this node's
  // actor, never at the same time as its other handlers, with the reply or an error (the tool threw, or
  // no reply within `timeout`). While any call is outstanding the node gets no other input.
  using call_done = std::function<void(context&, call_result)>;
  virtual void call(std::string_view tool, value request, std::chrono::milliseconds timeout, call_done done) {
    done(*this, call_result{false, value{}, "this node has no tools"});
  }

  // -- restarts and stops ----------------------------------------------------------------------------
  // A stateful kind (kind_spec::stateful) saves what a fresh instance needs to go on after a failure: the
  // value is kept when the current attempt commits and handed to the next instance as node_init::restored;
  // the inputs handled since then are given to that instance again (their emissions discarded).
  virtual void checkpoint(value state) {}
  // A blocking kind's way to abort in-flight work when the run stops (an agent closes its HTTP
  // connection): `hook` runs once, on another thread, while the node is inside a handler or between them.
  virtual void set_stop_hook(std::function<void()> hook) {}

  // -- decisions: a person in the loop (docs/durability.md, "People in the loop") -----------------------
  // Registers a pending decision `id` (the node's own numbering, unique while pending) about `shown`, with
  // a wall-clock deadline (unix ms, 0: none; the node enforces it with wake_after). Like a checkpoint it
  // belongs to the attempt: kept when it commits, dropped when it fails. Asking again for a pending id
  // changes nothing, so a restarted or resumed node asks again for what its checkpoint holds (on_start).
  // The runtime snapshots pending decisions, shows them (`loom runs`), and hands a decision to
  // on_decision(); the node does not finish while any is pending.
  virtual void ask(std::uint64_t id, value shown, std::int64_t deadline_unix_ms = 0) {}
  // Ends pending decision `id` without a person (a timeout), attempt-scoped like ask. The attempt that
  // handles a decision ends it by itself.
  virtual void settle(std::uint64_t id) {}

  // -- tracing (docs/tracing.md) ---------------------------------------------------------------------
  // This instance's span buffer when the run is traced (--trace, --otlp), else nullptr. Use it only from
  // the node's own handlers (an agent's model request span and its `traceparent` header).
  virtual observe::span_buffer* trace() { return nullptr; }
};

class node {
 public:
  virtual ~node() = default;
  virtual void on_start(context& ctx) {}
  virtual void on_message(context& ctx, std::size_t port, const value& v) {}
  // Runs of values: a kind that can handle several values of one input port as one step says so with
  // handles_runs() and overrides on_run. The runtime then hands it up to a slice of queued values at a
  // time, never more than its outputs have room for, as one attempt (a failure rolls the whole run back).
  // A run kind that makes calls (flow.call) has its run commit once every call made in it is answered.
  // The default handles the values one by one.
  virtual bool handles_runs() const { return false; }
  // A run kind whose every input value gives exactly one output value, in order (a map: flow.forward). A
  // movable instance (`recover: replace` across hosts) of such a kind on a single output link handles runs
  // too: the i-th output of a run is the output of its i-th input, which is the lineage a replacement
  // must reproduce (docs/cluster.md). A run that breaks the promise fails, naming the counts.
  virtual bool one_output_per_input() const { return false; }
  virtual void on_run(context& ctx, std::size_t port, std::span<const value> values) {
    for (const auto& v : values) on_message(ctx, port, v);
  }
  virtual void on_input_closed(context& ctx, std::size_t port) {}
  virtual bool on_pull(context& ctx) { return false; }
  // The timer the node asked for with ctx.wake_after() is due.
  virtual void on_timer(context& ctx) {}
  virtual void on_finish(context& ctx) {}
  // Someone decided about pending decision `id` (context::ask). Runs like an input, as an attempt; its
  // commit ends the decision. A decision for an id not pending is dropped (logged).
  virtual void on_decision(context& ctx, std::uint64_t id, const decision& d) {}
  // A consistent snapshot is taking this instance's part (docs/durability.md): make durable what its
  // committed checkpoint counts, before the part is sent (sink.file fdatasyncs its file, so a snapshot
  // never names bytes a power loss could take). Runs between handlers, on the node's actor; a throw fails
  // the instance. Most kinds have nothing to do.
  virtual void on_snapshot() {}
  // While this many decisions are pending the node gets no input (its links fill and credits push back).
  virtual std::size_t max_pending_decisions() const { return std::numeric_limits<std::size_t>::max(); }
  // A tool's handler (kinds with a call_spec): returns the reply; throw to reply with an error. The runtime
  // keeps a tool alive until every node that may call it has finished.
  virtual value on_call(context& ctx, const value& request);
};

}  // namespace loom
