// flow.call: calls a tool for each record: the tool node named in the node's `tools:` (or one tool of an
// MCP node there, `tool: NAME`), with arguments made from the record by a jq program (`args`), and sends
// the result merged into the record under a field (`into`), or alone.
//   inputs:  in (records: maps when `into` is set)
//   outputs: out (the record with its result under `into`, or the result alone), errors ({record, tool,
//            error} per failed call: the tool failed or timed out, `args` failed or gave no map, the
//            record is no map while `into` is set; unconnected, such a failure fails the run)
//   params:  args (string, "."), into (string, ""), tool (string, ""), max_in_flight (integer, 4, >= 1),
//            ordered (boolean, true), timeout_ms (integer, 30000, >= 1)
// Concurrency: the runtime hands the node a run of queued records (up to 64) as one step and commits it
// once every call of the run is answered; the node keeps up to max_in_flight of those calls out at once.
// `ordered: true` emits each run's results in the records' order; false, as the replies come. Under fault
// injection (one value at a time) or for an instance that may move hosts, one call is out at a time.
// Numbers go through unchanged (the record is not re-read, the result is merged as the tool gave it).
#include <fmt/format.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "loom/actors/flow/jq_program.hpp"
#include "loom/actors/kinds.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

class call_node final : public node {
 public:
  explicit call_node(const node_init& init)
      : name_(init.name),
        args_(init.params.get_string("args"), value{}),
        into_(init.params.get_string("into")),
        tool_name_(init.params.get_string("tool")),
        max_in_flight_(static_cast<std::size_t>(init.params.get_int("max_in_flight"))),
        ordered_(init.params.get_bool("ordered")),
        timeout_(init.params.get_int("timeout_ms")) {
    if (!args_.ok()) throw std::invalid_argument(fmt::format("flow.call `{}`: args: {}", name_, args_.errors()));
  }

  void on_start(context& ctx) override {
    auto tools = ctx.tools();
    if (tools.size() != 1)
      throw std::invalid_argument(fmt::format("flow.call `{}`: needs exactly one node in its `tools`, found {}",
                                              name_, tools.size()));
    tool_ = tools.front();
    const graph::kind_spec* kind = ctx.tool_kind(tool_);
    lists_ = kind != nullptr && kind->call && kind->call->lists_tools;
    if (lists_ && tool_name_.empty())
      throw std::invalid_argument(
          fmt::format("flow.call `{}`: `{}` offers several tools (MCP): say which with `tool`", name_, tool_));
    shown_ = lists_ ? tool_ + "." + tool_name_ : tool_;
  }

  void on_message(context& ctx, std::size_t, const value& v) override {
    waiting_.push_back({next_seq_++, v});
    pump(ctx);
  }
  bool handles_runs() const override { return true; }
  void on_run(context& ctx, std::size_t, std::span<const value> values) override {
    for (const auto& v : values) waiting_.push_back({next_seq_++, v});
    pump(ctx);
  }

 private:
  struct job {
    std::uint64_t seq;
    value record;
  };
  struct done_item {
    bool ok = false;
    value out;  // the record with its result, or the errors port's value
  };

  // Starts calls while fewer than max_in_flight are out. Reentrant calls (a context that answers inside
  // ctx.call) only mark that more may start; the outer loop starts them.
  void pump(context& ctx) {
    if (pumping_) return;
    pumping_ = true;
    try {
      while (in_flight_ < max_in_flight_ && !waiting_.empty()) {
        job j = std::move(waiting_.front());
        waiting_.pop_front();
        start(ctx, std::move(j));
      }
    } catch (...) {
      pumping_ = false;
      throw;
    }
    pumping_ = false;
  }

  void start(context& ctx, job j) {
    value args;
    try {
      args = args_.one(j.record, "args");
    } catch (const jq::failure& e) {
      return finish(ctx, j.seq, j.record, call_result{false, value{}, fmt::format("args: {}", e.what())});
    }
    if (!args.is_map())
      return finish(ctx, j.seq, j.record,
                    call_result{false, value{},
                                fmt::format("args (`{}`) gave {}, not a map of arguments", args_.text(),
                                            jq::excerpt(args))});
    if (!into_.empty() && !j.record.is_map())
      return finish(ctx, j.seq, j.record,
                    call_result{false, value{},
                                fmt::format("the record ({}) is not a map to put `{}` in", j.record.type_name(),
                                            into_)});
    value request = lists_ ? value{value_map{{"tool", tool_name_}, {"arguments", std::move(args)}}} : std::move(args);
    ++in_flight_;
    ctx.call(tool_, std::move(request), timeout_,
             [this, seq = j.seq, record = std::move(j.record)](context& c, call_result r) {
               --in_flight_;
               finish(c, seq, record, std::move(r));
               pump(c);
             });
  }

  void finish(context& ctx, std::uint64_t seq, const value& record, call_result r) {
    done_item d;
    if (r.ok) {
      value result = std::move(r.reply);
      if (lists_ && result.is_map()) {  // an MCP tool's reply: its structured content, else its text
        const value* s = result.find("structured");
        const value* t = result.find("text");
        result = s != nullptr ? *s : t != nullptr ? *t : result;
      }
      d.ok = true;
      d.out = into_.empty() ? std::move(result) : merged(record, std::move(result));
    } else {
      d.out = value{value_map{{"record", record}, {"tool", shown_}, {"error", r.error}}};
    }
    if (!d.ok) {
      failed(ctx, record, std::move(d.out), r.error);
      d.out = value{};
    } else if (!ordered_) {
      return ctx.emit(0, std::move(d.out));
    }
    if (!ordered_) return;
    done_.emplace(seq, std::move(d));
    for (auto it = done_.find(next_emit_); it != done_.end(); it = done_.find(next_emit_)) {
      if (it->second.ok) ctx.emit(0, std::move(it->second.out));
      done_.erase(it);
      ++next_emit_;
    }
  }

  // A failure goes to `errors` at once; in ordered mode its place in the order is then passed over.
  void failed(context& ctx, const value& record, value report, const std::string& why) {
    if (!ctx.connected(1))
      throw std::runtime_error(fmt::format("flow.call `{}`: calling `{}` failed for record {}: {} (output `errors` "
                                           "is not connected)",
                                           name_, shown_, jq::excerpt(record), why));
    ctx.emit(1, std::move(report));
  }

  value merged(const value& record, value result) const {
    value_map m = record.as_map();
    for (auto& [k, f] : m)
      if (k == into_) {
        f = std::move(result);
        return value{std::move(m)};
      }
    m.emplace_back(into_, std::move(result));
    return value{std::move(m)};
  }

  std::string name_;
  jq::program args_;
  std::string into_, tool_name_, tool_, shown_;
  std::size_t max_in_flight_;
  bool ordered_;
  std::chrono::milliseconds timeout_;
  bool lists_ = false;
  bool pumping_ = false;
  std::deque<job> waiting_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_seq_ = 0, next_emit_ = 0;
  std::map<std::uint64_t, done_item> done_;  // ordered: answered, waiting for those before them
};

// Validation: one tool node; `tool` given exactly when that node offers several (MCP); `args` compiles.
void check_call(const graph::graph& g, const graph::node& n, const graph::kind_catalog& catalog,
                graph::diagnostics& diags) {
  jq::check_param(n, "flow.call", "args", value{}, diags);
  const graph::config* tool = n.params.find("tool");
  bool named = tool != nullptr && tool->is_string() && !tool->as_string().empty();
  graph::location tool_at = tool != nullptr && tool->where().known() ? tool->where() : n.field_where("params");
  if (n.tools.size() != 1) {
    diags.error(n.field_where("tools"),
                fmt::format("flow.call `{}`: needs exactly one node in `tools` (the tool it calls), found {}", n.name,
                            n.tools.size()),
                "e.g. `tools: [prices]`");
    return;
  }
  const graph::node* t = g.find(n.tools.front());
  const graph::kind_spec* kind = t != nullptr ? catalog.find_kind(t->kind) : nullptr;
  if (kind == nullptr || !kind->call) return;  // the graph's own checks report it
  if (kind->call->lists_tools && !named)
    diags.error(n.field_where("tools"),
                fmt::format("flow.call `{}`: `{}` ({}) offers several tools: name one with param `tool`", n.name,
                            t->name, t->kind));
  if (!kind->call->lists_tools && named)
    diags.error(tool_at,
                fmt::format("flow.call `{}`: param `tool` names a tool of an MCP node, but `{}` ({}) is one tool",
                            n.name, t->name, t->kind),
                "remove `tool`");
}

}  // namespace

kind_def call_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "flow.call";
  s.doc = "calls its tool for each record, with arguments made by a jq program, and merges the result in";
  s.example = R"yaml(graph: call_example
nodes:
  invoices: {kind: source.value, params: {value: {id: 1234567890123456789, pages: 12, fee: 2}, repeat: 3}}
  pricing: {kind: tool.calculator}
  price:
    kind: flow.call
    tools: [pricing]
    params: {args: '{expression: "\(.pages) * 0.25 + \(.fee)"}', into: price, max_in_flight: 8}
  priced: {kind: sink.stdout, params: {format: jsonl}}
  failed: {kind: sink.stdout, params: {format: jsonl}}
edges:
  - invoices -> price -> priced
  - price.errors -> failed
)yaml";
  s.inputs = {{"in", "records (maps when `into` is set)"}};
  graph::port_spec errors{"errors", "{record, tool, error} per failed call"};
  errors.unconnected = graph::if_unconnected::warn;
  errors.hint = "a failed call then fails the run";
  s.outputs = {{"out", "the record with the result under `into`, or the result alone"}, errors};
  s.params = {
      param_spec::string("args", "jq program making the call's arguments (a map) from the record, e.g. "
                                 "`{sku: .sku, qty: .n}`")
          .def("."),
      param_spec::string("into", "put the result in this field of the record; empty: send the result alone")
          .def(""),
      param_spec::string("tool", "the tool to call when the node in `tools` offers several (tool.mcp)").def(""),
      param_spec::integer("max_in_flight", "calls out at once").def(4).at_least(1).at_most(64),
      param_spec::boolean("ordered", "emit results in the records' order (false: as they come)").def(true),
      param_spec::integer("timeout_ms", "how long one call may take").def(30000).at_least(1),
  };
  s.check = check_call;
  return {std::move(s), [](const node_init& init) { return std::make_unique<call_node>(init); }};
}

}  // namespace loom::actors
