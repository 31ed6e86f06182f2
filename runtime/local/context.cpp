// runtime/local/context.cpp: the context a node calls while it runs (runtime/node.hpp): emit into the
// outbox (outbox.hpp; sent when the attempt commits, node_host.hpp), pause and wake-ups (a delayed message to
// self that comes back to the turn, node_actor.cpp), checkpoints (kept by the attempt), its stop hook and
// what it may know of its tools (calls themselves: calls.cpp).
#include "loom/runtime/local/node_host.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace loom::local {

using namespace host_detail;

// -- context --------------------------------------------------------------------------------------
void node_host::emit(std::size_t port, value v) {
  check_port(port);
  if (mapped_.on) out_.set_input(mapped_.link, mapped_.next++);
  if (!out_.emit(port, std::move(v))) ++attempt_dropped_;
}
void node_host::emit_run(std::size_t port, std::span<const value> values) {
  check_port(port);
  if (mapped_.on) {  // one port, one link (handle_run): tagged in one step
    out_.emit_mapped(values, mapped_.link, mapped_.next);
    mapped_.next += values.size();
    return;
  }
  if (!out_.emit_run(port, values)) attempt_dropped_ += values.size();
}
void node_host::check_port(std::size_t port) const {
  if (port >= out_.ports())
    throw std::out_of_range(
        fmt::format("emit on output port {} of a node with {} outputs", port, out_.ports()));
}
bool node_host::connected(std::size_t port) const { return out_.connected(port); }
std::size_t node_host::budget() const { return out_.budget(); }
void node_host::pause_for(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return;
  paused_ = true;
  self_->delayed_send(self_, d, resume_atom::value);
}
// One delayed message to self per wake-up that is earlier than the one already asked for; each is
// numbered and only the last sent counts (it is the earliest), so a superseded one arriving later, or
// one sent before a restart, is dropped.
void node_host::wake_after(std::chrono::nanoseconds d) {
  if (phase_ == phase::done) return;
  d = std::max(d, std::chrono::nanoseconds{0});
  auto due = clock::now() + d;
  if (timer_armed_ && timer_at_ <= due) return;
  timer_armed_ = true;
  timer_at_ = due;
  self_->delayed_send(self_, d, timer_atom::value, ++timer_sent_);
}
std::string_view node_host::node_name() const { return me_.init.name; }
int node_host::instance() const { return me_.init.instance; }
int node_host::replicas() const { return me_.init.replicas; }
void node_host::checkpoint(value state) {
  pending_checkpoint_ = std::move(state);
  // The values of this attempt the state already includes: those before the one being handled, and it.
  checkpoint_after_ = site_ == site::message ? current_ + current_len_ : 0;
}
void node_host::set_stop_hook(std::function<void()> hook) { run_->set_stop_hook(me_.index, std::move(hook)); }

std::vector<std::string> node_host::tools() const {
  std::vector<std::string> out;
  for (const auto& t : me_.tools) out.push_back(t.name);
  return out;
}
const graph::kind_spec* node_host::tool_kind(std::string_view tool) const {
  for (const auto& t : me_.tools)
    if (t.name == tool) return t.kind;
  return nullptr;
}

}  // namespace loom::local
