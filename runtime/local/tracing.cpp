// runtime/local/tracing.cpp: the spans of a traced run (docs/tracing.md), recorded into the instance's
// span buffer, which the run's tracer gathers once the run ends. Called from the turn (node_actor.cpp: one
// span per slice that did work) and from calls (calls.cpp: a call's span on the caller, a served call's on
// the tool, linked by the caller's span id carried in the call). Nothing here runs in a run not traced.
#include "loom/runtime/local/node_host.hpp"

namespace loom::local {

void node_host::trace_slice(std::uint64_t id, clock::time_point t0, clock::time_point t1, std::uint64_t n,
                            std::uint64_t pulled) {
  trace_->current = 0;
  if (n == 0 && pulled == 0) return;
  observe::span s;
  s.id = id;
  s.kind = n > 0 ? observe::span_kind::batch : observe::span_kind::pull;
  s.track = me_.index;
  s.start_ns = trace_->unix_ns(t0);
  s.end_ns = trace_->unix_ns(t1);
  s.count = static_cast<std::int64_t>(n > 0 ? n : pulled - 1);
  trace_->add(std::move(s));
}

void node_host::trace_call(const pending_call& p, const call_result& r) {
  observe::span s;
  s.id = p.span.id;
  s.parent = p.span.parent;
  s.kind = observe::span_kind::call;
  s.track = me_.index;
  s.start_ns = trace_->unix_ns(p.span.start);
  s.end_ns = trace_->now_ns();
  s.name = "call " + p.tool;
  s.attrs.push_back({"loom.tool", p.tool});
  if (!r.ok) s.attrs.push_back({"loom.error", r.error});
  s.error = !r.ok;
  trace_->add(std::move(s));
  trace_->current = p.span.parent;  // the reply's handler continues where the call was made
}

void node_host::trace_served(const served_call& c, std::uint64_t id, clock::time_point t0, clock::time_point t1,
                             const reply_msg& r) {
  observe::span s;
  s.id = id;
  s.parent = c.trace_parent;
  s.kind = observe::span_kind::tool;
  s.track = me_.index;
  s.start_ns = trace_->unix_ns(t0);
  s.end_ns = trace_->unix_ns(t1);
  s.name = "tool " + me_.init.name;
  if (!r.ok) s.attrs.push_back({"loom.error", r.error});
  s.error = !r.ok;
  trace_->add(std::move(s));
}

}  // namespace loom::local
