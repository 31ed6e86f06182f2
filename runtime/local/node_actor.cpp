// runtime/local/node_actor.cpp: how one node instance runs: queue, credits, batching, restarts, finish.
#include "runtime/local/node_actor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <limits>
#include <unordered_map>

#include "runtime/schema.hpp"

namespace loom::local {
namespace {

using clock = std::chrono::steady_clock;

// A node's queue holds at most the sum of its input capacities; once a link's consumed count reaches this
// share of its capacity, its credits go back to the producer (they also go back whenever the queue drains).
std::uint32_t grant_threshold(std::int64_t capacity) {
  return static_cast<std::uint32_t>(std::max<std::int64_t>(1, capacity / 2));
}

struct out_link {
  caf::actor target;
  link_id remote;
  std::int64_t credits;
  std::vector<value> pending;
};

struct out_edge {
  std::vector<std::size_t> links;  // indices into out_links_
  std::size_t next = 0;            // round robin over replicas
};

struct in_link {
  std::size_t port;
  caf::actor producer;
  link_id remote;
  std::uint32_t consumed = 0;
  std::uint32_t threshold;
  bool open = true;
  std::string label;
};

struct queued {
  link_id link;
  bool eos;  // the end-of-stream marker of `link`, queued behind its last value
  value v;
};

class node_host final : public context {
 public:
  node_host(caf::event_based_actor* self, std::shared_ptr<instance_cfg> cfg)
      : self_(self), cfg_(std::move(cfg)), counters_(*cfg_->counters) {}

  // -- context --------------------------------------------------------------------------------------
  void emit(std::size_t port, value v) override {
    if (port >= ports_.size())
      throw std::out_of_range(fmt::format("emit on output port {} of a node with {} outputs", port,
                                          ports_.size()));
    auto& edges = ports_[port];
    if (edges.empty()) {
      counters_.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    for (auto& e : edges) out_links_[pick(e)].pending.push_back(v);
  }
  bool connected(std::size_t port) const override { return port < ports_.size() && !ports_[port].empty(); }
  std::size_t budget() const override {
    std::int64_t best = std::numeric_limits<std::int64_t>::max();
    for (const auto& edges : ports_)
      for (const auto& e : edges) {
        std::int64_t room = 0;
        for (auto i : e.links) room += std::max<std::int64_t>(0, out_links_[i].credits - pending_of(i));
        best = std::min(best, room);
      }
    if (best == std::numeric_limits<std::int64_t>::max()) return 1024;  // no outputs connected
    return static_cast<std::size_t>(best);
  }
  void pause_for(std::chrono::nanoseconds d) override {
    if (d.count() <= 0) return;
    paused_ = true;
    self_->delayed_send(self_, d, resume_atom::value);
  }
  std::string_view node_name() const override { return cfg_->init.name; }
  int instance() const override { return cfg_->init.instance; }
  int replicas() const override { return cfg_->init.replicas; }
  bool stopping() const override { return stopping_; }

  std::vector<std::string> tools() const override {
    std::vector<std::string> out;
    for (const auto& t : cfg_->tools) out.push_back(t.name);
    return out;
  }
  const graph::kind_spec* tool_kind(std::string_view tool) const override {
    for (const auto& t : cfg_->tools)
      if (t.name == tool) return t.kind;
    return nullptr;
  }
  void call(std::string_view tool, value request, std::chrono::milliseconds timeout, call_done done) override {
    tool_state* t = nullptr;
    for (auto& ts : tools_)
      if (ts.cfg->name == tool) t = &ts;
    if (!t || t->actors.empty()) {
      done(*this, call_result{false, value{}, fmt::format("`{}` is not a tool of this node", tool)});
      return;
    }
    auto id = next_call_++;
    auto& target = t->actors[t->next++ % t->actors.size()];
    calls_.emplace(id, pending_call{std::string(tool), timeout, std::move(done)});
    self_->send(target, call_msg{id, std::move(request)});
    self_->delayed_send(self_, timeout, call_timeout_msg{id});
  }

  // -- wiring and messages ---------------------------------------------------------------------------
  void wire(const std::vector<caf::actor>& actors) {
    ports_.resize(cfg_->out_ports.size());
    for (std::size_t p = 0; p < cfg_->out_ports.size(); ++p)
      for (const auto& ecfg : cfg_->out_ports[p]) {
        out_edge e;
        for (const auto& l : ecfg.links) {
          e.links.push_back(out_links_.size());
          out_links_.push_back(out_link{actors.at(l.consumer), l.remote, l.capacity, {}});
        }
        ports_[p].push_back(std::move(e));
      }
    for (const auto& l : cfg_->in_links)
      in_links_.push_back(in_link{l.port, actors.at(l.producer), l.remote, 0, grant_threshold(l.capacity), true,
                                  l.label});
    open_ports_.assign(cfg_->input_names.size(), 0);
    for (const auto& l : in_links_) ++open_ports_[l.port];
    for (std::size_t p = 0; p < open_ports_.size(); ++p)
      if (open_ports_[p] == 0) closed_pending_.push_back(p);
    is_source_ = cfg_->input_names.empty() && !cfg_->is_tool;
    for (const auto& t : cfg_->tools) {
      tool_state ts{&t, {}, 0};
      for (auto i : t.instances) ts.actors.push_back(actors.at(i));
      tools_.push_back(std::move(ts));
    }
  }

  void start() {
    ensure_started();
    if (!done_) pump();
  }

  // Makes and starts the node once; a tool may be called before its start message arrives.
  bool ensure_started() {
    if (!started_) {
      started_ = true;
      guarded("while starting", [&] { make_node(); }, nullptr);  // a restart makes and starts a fresh node
    }
    return impl_ != nullptr && !done_;
  }

  void on_batch(batch_msg& b) {
    if (done_) return;
    for (auto& v : b.values) queue_.push_back(queued{b.link, false, std::move(v)});
    auto depth = static_cast<std::uint64_t>(queue_.size());
    if (depth > counters_.queue_hwm.load(std::memory_order_relaxed))
      counters_.queue_hwm.store(depth, std::memory_order_relaxed);
    pump();
  }

  void on_credit(const credit_msg& c) {
    if (done_) return;
    out_links_.at(c.link).credits += c.credits;
    pump();
  }

  void on_eos(const eos_msg& e) {
    if (done_) return;
    // The queue may still hold this link's values: the port closes once they are handled.
    queue_.push_back(queued{e.link, true, value{}});
    in_links_.at(e.link).open = false;
    pump();
  }

  void on_resume() {
    paused_ = false;
    pump();
  }

  void on_pump() { pump(); }

  // A tool serves a call: the request is checked against its call arguments, then on_call. Whatever goes
  // wrong goes back to the caller as an error; a tool's failure to answer one call does not fail the run.
  void on_call(caf::actor caller, call_msg& c) {
    if (!ensure_started()) {
      self_->send(caller, reply_msg{c.id, false, value{}, fmt::format("tool `{}` has stopped", cfg_->init.name)});
      return;
    }
    auto t0 = clock::now();
    reply_msg r{c.id, true, value{}, {}};
    try {
      r.reply = impl_->on_call(*this, check_call_request(*cfg_->def->spec.call, c.request));
    } catch (const std::exception& e) {
      r.ok = false;
      r.error = e.what();
    }
    counters_.in.fetch_add(1, std::memory_order_relaxed);
    counters_.out.fetch_add(1, std::memory_order_relaxed);
    counters_.busy_ns.fetch_add(static_cast<std::uint64_t>((clock::now() - t0).count()), std::memory_order_relaxed);
    self_->send(caller, std::move(r));
    flush();
  }

  void on_reply(reply_msg& r) {
    auto it = calls_.find(r.id);
    if (it == calls_.end() || done_) return;  // timed out already
    auto p = std::move(it->second);
    calls_.erase(it);
    finish_call(p, call_result{r.ok, std::move(r.reply), std::move(r.error)});
  }

  void on_call_timeout(const call_timeout_msg& t) {
    auto it = calls_.find(t.id);
    if (it == calls_.end() || done_) return;
    auto p = std::move(it->second);
    calls_.erase(it);
    finish_call(p, call_result{false, value{},
                               fmt::format("tool `{}` did not reply within {} ms", p.tool, p.timeout.count())});
  }

  void on_release() {
    released_ = true;
    pump();
  }

  // SIGINT or another node's failure: drop what is queued, let the node flush (sinks close their files on
  // a complete record), report and quit.
  void cancel() {
    if (done_) return;
    stopping_ = true;
    counters_.dropped.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
    if (started_ && impl_ && !finished_) {
      finished_ = true;
      try {
        impl_->on_finish(*this);
      } catch (const std::exception& e) {
        report(true, fmt::format("{} failed while stopping: {}", who(), e.what()));
        return;
      }
    }
    report(false, {});
  }

 private:
  struct pending_call {
    std::string tool;
    std::chrono::milliseconds timeout;
    call_done done;
  };
  struct tool_state {
    const tool_cfg* cfg;
    std::vector<caf::actor> actors;
    std::size_t next;
  };

  void finish_call(pending_call& p, call_result r) {
    guarded("while handling a tool reply", [&] { p.done(*this, std::move(r)); }, nullptr);
    if (!done_) pump();
  }

  std::int64_t pending_of(std::size_t i) const { return static_cast<std::int64_t>(out_links_[i].pending.size()); }

  std::size_t pick(out_edge& e) {
    auto n = e.links.size();
    if (n == 1) return e.links[0];
    for (std::size_t k = 0; k < n; ++k) {
      auto i = e.links[(e.next + k) % n];
      if (out_links_[i].credits > pending_of(i)) {
        e.next = (e.next + k + 1) % n;
        return i;
      }
    }
    auto i = e.links[e.next];
    e.next = (e.next + 1) % n;
    return i;
  }

  void make_node() {
    impl_ = cfg_->def->make(cfg_->init);
    impl_->on_start(*this);
  }

  std::string who() const {
    if (cfg_->init.replicas > 1)
      return fmt::format("node `{}` ({}, instance {})", cfg_->init.name, cfg_->kind, cfg_->init.instance);
    return fmt::format("node `{}` ({})", cfg_->init.name, cfg_->kind);
  }

  // Runs `f`; on an exception restarts the node (a fresh instance) while the policy allows, then returns
  // false so the caller retries, or fails the run. `input` names the message being handled, if any.
  template <class F>
  bool guarded(const char* what, F&& f, const in_link* input) {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      return recover(what, e.what(), input);
    } catch (...) {
      return recover(what, "unknown exception", input);
    }
  }

  bool recover(const char* what, const std::string& error, const in_link* input) {
    auto where = input ? fmt::format("on input `{}` (edge {})", cfg_->input_names.at(input->port), input->label)
                       : std::string(what);
    if (restarts_ < cfg_->max_restarts) {
      ++restarts_;
      counters_.restarts.fetch_add(1, std::memory_order_relaxed);
      try {
        make_node();
        return false;
      } catch (const std::exception& e) {
        report(true, fmt::format("{} failed {}: {}; restart {} failed: {}", who(), where, error, restarts_,
                                 e.what()));
        return false;
      }
    }
    auto policy = cfg_->max_restarts > 0 ? fmt::format(" (after {} restarts)", restarts_) : std::string{};
    report(true, fmt::format("{} failed {}{}: {}", who(), where, policy, error));
    return false;
  }

  // No room on some output link: handling more input would queue past the link's capacity.
  bool blocked() const {
    for (const auto& l : out_links_)
      if (static_cast<std::int64_t>(l.pending.size()) >= l.credits) return true;
    return false;
  }

  bool has_pending() const {
    for (const auto& l : out_links_)
      if (!l.pending.empty()) return true;
    return false;
  }

  void flush() {
    for (auto& l : out_links_) {
      if (l.pending.empty() || l.credits <= 0) continue;
      auto n = std::min<std::int64_t>(l.credits, static_cast<std::int64_t>(l.pending.size()));
      l.credits -= n;
      counters_.out.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      if (n == static_cast<std::int64_t>(l.pending.size())) {
        self_->send(l.target, batch_msg{l.remote, std::move(l.pending)});
        l.pending = {};
      } else {
        std::vector<value> head(std::make_move_iterator(l.pending.begin()),
                                std::make_move_iterator(l.pending.begin() + n));
        l.pending.erase(l.pending.begin(), l.pending.begin() + n);
        self_->send(l.target, batch_msg{l.remote, std::move(head)});
      }
    }
  }

  void grant(in_link& l) {
    if (l.consumed == 0) return;
    self_->send(l.producer, credit_msg{l.remote, l.consumed});
    l.consumed = 0;
  }

  void grant_all() {
    for (auto& l : in_links_) grant(l);
  }

  // Handles queued input while nothing blocks it, pulls a source, finishes when all input has ended.
  void pump() {
    if (done_ || !impl_ || paused_) return;
    auto t0 = clock::now();
    std::uint64_t handled = 0;
    while (!paused_ && !done_ && calls_.empty() && !queue_.empty() && !blocked()) {
      auto& q = queue_.front();
      auto& link = in_links_[q.link];
      if (q.eos) {
        queue_.pop_front();
        grant(link);
        if (--open_ports_[link.port] == 0) closed_pending_.push_back(link.port);
        close_ports();
        continue;
      }
      if (!guarded("", [&] { impl_->on_message(*this, link.port, q.v); }, &link)) continue;
      ++handled;
      queue_.pop_front();
      if (++link.consumed >= link.threshold) grant(link);
      if ((handled & 63) == 0) flush();  // keep the next stage busy during a long batch
    }
    if (done_) return;
    close_ports();
    if (queue_.empty()) grant_all();
    counters_.in.fetch_add(handled, std::memory_order_relaxed);
    flush();
    if (is_source_ && !pulled_all_ && !paused_ && calls_.empty() && !blocked() && !finished_) pull();
    counters_.busy_ns.fetch_add(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count()),
        std::memory_order_relaxed);
    maybe_finish();  // last: once it reports done, run_graph may return and free the counters
  }

  void close_ports() {
    while (!closed_pending_.empty() && !done_) {
      auto p = closed_pending_.front();
      if (!guarded("while closing input", [&] { impl_->on_input_closed(*this, p); }, nullptr)) continue;
      closed_pending_.erase(closed_pending_.begin());
      ++closed_ports_;
    }
  }

  void pull() {
    if (stopping_ || budget() == 0) return;
    bool more = true;
    if (!guarded("while producing", [&] { more = impl_->on_pull(*this); }, nullptr)) {
      if (!done_) self_->send(self_, pump_atom::value);  // restarted: pull the fresh node
      return;
    }
    flush();
    if (!more) {
      pulled_all_ = true;
    } else if (!blocked() && !paused_ && budget() > 0) {
      self_->send(self_, pump_atom::value);  // more to do: yield to other actors, then go on
    }
  }

  void maybe_finish() {
    if (done_ || paused_ || !calls_.empty()) return;
    bool inputs_done = is_source_ ? pulled_all_ : (closed_ports_ == open_ports_.size() && queue_.empty());
    if (cfg_->is_tool && !released_) inputs_done = false;  // callers may still call
    if (!inputs_done) return;
    if (!finished_) {
      finished_ = true;
      if (!guarded("while finishing", [&] { impl_->on_finish(*this); }, nullptr)) {
        if (!done_) {  // restarted: finish the fresh node
          finished_ = false;
          self_->send(self_, pump_atom::value);
        }
        return;
      }
      flush();
    }
    if (has_pending()) return;  // wait for credits to send what on_finish emitted
    for (auto& l : out_links_) self_->send(l.target, eos_msg{l.remote});
    report(false, {});
  }

  void report(bool failed, std::string error) {
    if (done_) return;
    done_ = true;
    self_->send(cfg_->coordinator, done_msg{cfg_->index, failed, std::move(error)});
    self_->quit();
  }

  caf::event_based_actor* self_;
  std::shared_ptr<instance_cfg> cfg_;
  node_counters& counters_;
  std::unique_ptr<node> impl_;
  std::vector<std::vector<out_edge>> ports_;
  std::vector<out_link> out_links_;
  std::vector<in_link> in_links_;
  std::deque<queued> queue_;
  std::vector<std::size_t> open_ports_;  // open links per input port
  std::vector<std::size_t> closed_pending_;
  std::size_t closed_ports_ = 0;
  int restarts_ = 0;
  bool is_source_ = false;
  bool started_ = false;
  bool paused_ = false;
  bool pulled_all_ = false;
  bool finished_ = false;
  bool stopping_ = false;
  bool done_ = false;
  bool released_ = false;
  std::vector<tool_state> tools_;
  std::unordered_map<std::uint64_t, pending_call> calls_;
  std::uint64_t next_call_ = 1;
};

}  // namespace

caf::behavior node_actor_behavior(caf::event_based_actor* self, std::shared_ptr<instance_cfg> cfg) {
  auto host = std::make_shared<node_host>(self, std::move(cfg));
  return {
      // The hot messages first: CAF 0.17 tries handlers in order.
      [=](batch_msg& b) { host->on_batch(b); },
      [=](const credit_msg& c) { host->on_credit(c); },
      [=](wire_msg& w) { host->wire(w.actors); },
      [=](start_atom) { host->start(); },
      [=](const eos_msg& e) { host->on_eos(e); },
      [=](resume_atom) { host->on_resume(); },
      [=](pump_atom) { host->on_pump(); },
      [=](cancel_atom) { host->cancel(); },
      [=](call_msg& c) { host->on_call(caf::actor_cast<caf::actor>(self->current_sender()), c); },
      [=](reply_msg& r) { host->on_reply(r); },
      [=](const call_timeout_msg& t) { host->on_call_timeout(t); },
      [=](release_atom) { host->on_release(); },
  };
}

}  // namespace loom::local
