// human.approve: holds each value until a person decides (docs/durability.md, "People in the loop").
//   inputs:  in
//   outputs: out (approved values, or the edited value), rejected ({value, reason, by}; unconnected: a
//            warning, rejected values are then dropped)
//   params:  timeout_s (floating, 0: none), on_timeout (approve | reject | fail, "reject"), show (string,
//            "": the whole value; else the field of a map value shown to the person), max_pending (integer,
//            64: values held at once; past it the node takes no input and its links push back)
// Each value gets the next decision id (0, 1, ...) and is asked about (context::ask), with a wall-clock
// deadline when timeout_s is set: time spent while the run was stopped counts. A decision comes from
// `loom approve DIR NODE` (approve, --reject, --value JSON: an edit) and is handled between inputs; values
// leave in the order they are decided. A deadline that passes applies on_timeout (a timer: also while
// nothing arrives; a resumed run applies the ones that passed while it was stopped at once).
// State: {next, pending: [[id, value, deadline_unix_ms], ...]}, checkpointed on every change, so a restart
// or a resume asks again for exactly what was pending and nothing is replayed.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "loom/actors/kinds.hpp"
#include "loom/runtime/json.hpp"

namespace loom::actors {
namespace {

class approve final : public node {
 public:
  explicit approve(const node_init& init)
      : name_(init.name),
        timeout_ms_(static_cast<std::int64_t>(std::llround(init.params.get_float("timeout_s") * 1000.0))),
        on_timeout_(init.params.get_string("on_timeout")),
        show_(init.params.get_string("show")),
        max_pending_(static_cast<std::size_t>(init.params.get_int("max_pending"))) {
    if (!init.restored.is_null()) restore(init.restored);
  }

  void on_start(context& ctx) override {
    for (const auto& [id, p] : pending_) ctx.ask(id, shown(p.v), p.deadline);
    arm(ctx);
  }

  void on_message(context& ctx, std::size_t, const value& v) override {
    auto id = next_++;
    auto deadline = timeout_ms_ > 0 ? unix_ms_now() + timeout_ms_ : 0;
    pending_.emplace(id, held{v, deadline});
    ctx.ask(id, shown(v), deadline);
    save(ctx);
    arm(ctx);
  }

  void on_decision(context& ctx, std::uint64_t id, const decision& d) override {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // the runtime hands only pending ids; a restored state agrees
    switch (d.what) {
      case decision::verdict::approve: ctx.emit(0, it->second.v); break;
      case decision::verdict::edit: ctx.emit(0, d.edited); break;
      case decision::verdict::reject: reject(ctx, it->second.v, d.reason, d.by); break;
    }
    pending_.erase(it);
    save(ctx);
  }

  // Deadlines that passed: on_timeout applies to each, oldest first.
  void on_timer(context& ctx) override {
    auto now = unix_ms_now();
    bool changed = false;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline == 0 || it->second.deadline > now) {
        ++it;
        continue;
      }
      if (on_timeout_ == "fail")
        throw std::runtime_error(fmt::format("human.approve `{}`: decision {} about {} was not made within {} s "
                                             "(on_timeout: fail)",
                                             name_, it->first, excerpt(it->second.v), timeout_ms_ / 1000.0));
      if (on_timeout_ == "approve")
        ctx.emit(0, it->second.v);
      else
        reject(ctx, it->second.v, fmt::format("no decision within {} s", timeout_ms_ / 1000.0), "timeout");
      ctx.settle(it->first);
      it = pending_.erase(it);
      changed = true;
    }
    if (changed) save(ctx);
    arm(ctx);
  }

  std::size_t max_pending_decisions() const override { return max_pending_; }

 private:
  struct held {
    value v;
    std::int64_t deadline = 0;  // unix ms; 0: none
  };

  static std::string excerpt(const value& v) {
    auto s = to_json_line(v);
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
  }

  value shown(const value& v) const {
    if (show_.empty() || !v.is_map()) return v;
    const value* f = v.find(show_);
    return f ? *f : v;
  }

  void reject(context& ctx, const value& v, const std::string& reason, const std::string& by) {
    if (!ctx.connected(1)) return;
    ctx.emit(1, value(value_map{{"value", v}, {"reason", reason}, {"by", by}}));
  }

  // One wake-up for the earliest deadline.
  void arm(context& ctx) {
    std::int64_t earliest = 0;
    for (const auto& [id, p] : pending_)
      if (p.deadline > 0 && (earliest == 0 || p.deadline < earliest)) earliest = p.deadline;
    if (earliest > 0) ctx.wake_after(std::chrono::milliseconds(std::max<std::int64_t>(0, earliest - unix_ms_now())));
  }

  void save(context& ctx) {
    value_list pending;
    for (const auto& [id, p] : pending_) pending.emplace_back(value_list{id, p.v, p.deadline});
    ctx.checkpoint(value(value_map{{"next", next_}, {"pending", value(std::move(pending))}}));
  }

  void restore(const value& s) {
    auto bad = [&](const char* why) {
      return std::invalid_argument(fmt::format("human.approve `{}`: its saved state {}", name_, why));
    };
    const value* next = s.is_map() ? s.find("next") : nullptr;
    const value* pending = s.is_map() ? s.find("pending") : nullptr;
    if (!next || !next->is_int() || !pending || !pending->is_list()) throw bad("is not {next, pending}");
    next_ = static_cast<std::uint64_t>(next->as_int());
    for (const auto& e : pending->as_list()) {
      if (!e.is_list() || e.as_list().size() != 3 || !e.as_list()[0].is_int() || !e.as_list()[2].is_int())
        throw bad("has a pending entry that is not [id, value, deadline]");
      const auto& l = e.as_list();
      pending_.emplace(static_cast<std::uint64_t>(l[0].as_int()), held{l[1], l[2].as_int()});
    }
  }

  std::string name_;
  std::int64_t timeout_ms_;
  std::string on_timeout_, show_;
  std::size_t max_pending_;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, held> pending_;
};

}  // namespace

kind_def approve_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "human.approve";
  s.doc = "holds each value until a person approves, rejects or edits it (loom approve; needs --state)";
  s.example = R"yaml(graph: approve_example
nodes:
  refunds: {kind: source.value, params: {value: {order: 17, refund: 250}}}
  review: {kind: human.approve, params: {show: refund, timeout_s: 3600, on_timeout: reject}}
  pay: {kind: sink.stdout, params: {format: jsonl}}
  refused: {kind: sink.stdout, params: {format: jsonl}}
edges:
  - refunds -> review
  - review.out -> pay
  - review.rejected -> refused
)yaml";
  s.stateful = true;  // the values held: checkpointed on every change
  s.inputs = {{"in", "the values to decide about"}};
  graph::port_spec rejected{"rejected", "{value, reason, by} for each rejected (or timed-out) value"};
  rejected.unconnected = graph::if_unconnected::warn;
  rejected.hint = "rejected values are then dropped";
  s.outputs = {{"out", "approved values (an edit: the edited value), in the order they are decided"}, rejected};
  s.params = {
      param_spec::floating("timeout_s", "seconds a value waits for a decision (wall clock, also while the run is "
                                        "stopped); 0: no limit")
          .def(0.0)
          .at_least(0),
      param_spec::string("on_timeout", "what a value past timeout_s gets: approve, reject (to `rejected`) or fail "
                                       "(the node fails)")
          .def("reject")
          .one_of({"approve", "reject", "fail"}),
      param_spec::string("show", "the field of a map value shown to the person; empty: the whole value").def(""),
      param_spec::integer("max_pending", "values held at once; past it the node takes no input (backpressure)")
          .def(64)
          .at_least(1)
          .at_most(100000),
  };
  return {std::move(s), [](const node_init& init) { return std::make_unique<approve>(init); }};
}

}  // namespace loom::actors
