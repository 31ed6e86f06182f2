// runtime/local/calls.cpp: calls between nodes. The caller side: context::call sends a call_msg to one of
// the tool's instances (round robin) and arms a timeout; the reply (or the timeout) goes to the call's
// `done` as an attempt of its own (node_host.hpp), then to the turn (node_actor.cpp: pump). The tool side:
// a call_msg is queued (at most max_pending), a pump message sent behind it, and the turn serves it in
// order (serve); its reply goes back to the caller. A cancelled call that has not started never runs.
#include "loom/runtime/local/node_host.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "loom/runtime/schema.hpp"

namespace loom::local {

using namespace host_detail;

void node_host::call(std::string_view tool, value request, std::chrono::milliseconds timeout, call_done done) {
  tool_ref* t = nullptr;
  for (auto& r : tools_)
    if (r.plan->name == tool) t = &r;
  if (!t || t->actors.empty() || restoring_) {
    done(*this, call_result{false, value{},
                            restoring_ ? std::string("calls are not made while a node is restored")
                                       : fmt::format("`{}` is not a tool of this node", tool)});
    return;
  }
  auto id = next_call_++;
  auto k = t->next++ % t->actors.size();
  auto& target = t->actors[k];
  auto to = t->plan->instances[k];
  pending_call p{std::string(tool), timeout, std::move(done), target};
  p.to = to;
  if (spans_) p.span = {probe_->new_span(), probe_->current(), clock::now()};
  auto span = p.span.id;
  calls_.emplace(id, std::move(p));
  self_->send(target, call_msg{id, std::move(request), span, to});
  self_->delayed_send(self_, timeout, call_timeout_msg{id});
}

// A tool takes a call: queued (at most max_pending), served in turn by pump().
void node_host::on_call(caf::actor caller, call_msg& c) {
  if (phase_ == phase::done || stopping() || !ensure_started()) {
    self_->send(caller, reply_msg{c.id, false, value{}, fmt::format("tool `{}` has stopped", me_.init.name)});
    return;
  }
  if (!me_.is_tool) {
    self_->send(caller, reply_msg{c.id, false, value{}, fmt::format("node `{}` is not a tool", me_.init.name)});
    return;
  }
  if (served_.size() >= me_.max_pending) {
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    if (probe_) probe_->rejected(me_.init.name);
    self_->send(caller, reply_msg{c.id, false, value{},
                                  fmt::format("tool `{}` is busy: {} calls are pending (max_pending {})",
                                              me_.init.name, served_.size(), me_.max_pending)});
    return;
  }
  served_.push_back(served_call{std::move(caller), c.id, std::move(c.request), c.trace_parent, pumps_sent_ + 1});
  auto depth = static_cast<std::uint64_t>(served_.size());
  counters_.queued.store(depth, std::memory_order_relaxed);
  if (depth > counters_.queue_hwm.load(std::memory_order_relaxed))
    counters_.queue_hwm.store(depth, std::memory_order_relaxed);
  // Served from the mailbox's next turn, so a cancel already behind this call is seen first: by a pump
  // message sent now (one already on its way may be ahead of that cancel).
  send_pump();
}

// The caller gave up on a call: if it has not started, it never runs.
void node_host::on_cancel_call(const caf::actor& caller, std::uint64_t id) {
  auto it = std::find_if(served_.begin(), served_.end(),
                         [&](const served_call& s) { return s.id == id && s.caller == caller; });
  if (it == served_.end()) return;
  served_.erase(it);
  counters_.rejected.fetch_add(1, std::memory_order_relaxed);
}

void node_host::on_reply(reply_msg& r) {
  auto it = calls_.find(r.id);
  if (it == calls_.end() || phase_ == phase::done) {
    counters_.late.fetch_add(1, std::memory_order_relaxed);  // timed out or abandoned: dropped
    return;
  }
  auto p = std::move(it->second);
  calls_.erase(it);
  answer(p, call_result{r.ok, std::move(r.reply), std::move(r.error)});
}

void node_host::on_call_timeout(const call_timeout_msg& t) {
  auto it = calls_.find(t.id);
  if (it == calls_.end() || phase_ == phase::done) return;
  auto p = std::move(it->second);
  calls_.erase(it);
  self_->send(p.target, cancel_call_msg{t.id, p.to});
  if (probe_) probe_->timed_out(p.tool);
  answer(p, call_result{false, value{},
                        fmt::format("tool `{}` did not reply within {} ms", p.tool, p.timeout.count())});
}

void node_host::answer(pending_call& p, call_result r) {
  if (spans_ && p.span.id != 0)  // the call's span ends; the reply's handler runs in the span that called
    probe_->call_span(p.span.id, p.span.parent, p.span.start, p.tool, r.ok, r.error);
  attempt(site::reply, [&] { p.done(*this, std::move(r)); });
  pump();
}

// A tool serves one call: the request is checked against its call arguments, then on_call. Whatever goes
// wrong goes back to the caller as an error; a tool's failure to answer one call does not fail the run.
void node_host::serve(served_call& c) {
  auto t0 = clock::now();
  reply_msg r{c.id, true, value{}, {}};
  std::uint64_t span = 0, outer = 0;
  if (spans_) {
    outer = probe_->current();
    span = probe_->new_span();
    probe_->set_current(span);
  }
  out_.begin();
  try {
    r.reply = impl_->on_call(*this, check_call_request(*me_.def->spec.call, c.request));
    out_.commit();
  } catch (...) {
    out_.rollback();
    r.ok = false;
    r.error = what_of(std::current_exception());
  }
  counters_.in.fetch_add(1, std::memory_order_relaxed);
  counters_.out.fetch_add(1, std::memory_order_relaxed);
  auto t1 = clock::now();  // busy time: counted by the turn (pump) that served this call, not here too
  if (probe_) probe_->served(me_.init.name, r.ok, std::chrono::duration<double>(t1 - t0).count());
  if (spans_) {
    probe_->served_span(span, c.trace_parent, t0, t1, me_.init.name, r.ok, r.error);
    probe_->set_current(outer);
  }
  self_->send(c.caller, std::move(r));
}

}  // namespace loom::local
