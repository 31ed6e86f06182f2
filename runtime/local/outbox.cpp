// runtime/local/outbox.cpp: placing values on links, credits, batches, attempts.
#include "loom/runtime/local/outbox.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

namespace loom::local {

namespace {
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void outbox::wire(const instance_plan& plan, const std::vector<caf::actor>& actors, run_state& run,
                  batch_pool& pool) {
  pool_ = &pool;
  ports_.assign(plan.out_ports.size(), {});
  for (std::size_t p = 0; p < plan.out_ports.size(); ++p)
    for (const auto& ep : plan.out_ports[p]) {
      auto ei = static_cast<std::uint32_t>(edges_.size());
      edge e;
      e.stat = &run.edge(ep.id);
      for (const auto& l : ep.links) {
        e.links.push_back(static_cast<std::uint32_t>(links_.size()));
        links_.push_back(link{actors[l.consumer], l.remote, l.capacity, l.capacity, ei});
        links_.back().consumer = l.consumer;
        links_.back().elsewhere = l.consumer < run.remote.size() && run.remote[l.consumer];
        if (l.bytes > 0) {
          links_.back().budget = l.bytes;
          links_.back().unit = std::max<std::int64_t>(16, l.bytes / 64);
        }
        if (auto r = links_.back().room(); r > 0) {
          ++e.with_room;
          e.room += r;
        }
      }
      if (e.with_room == 0) ++full_edges_;
      edges_.push_back(std::move(e));
      ports_[p].push_back(ei);
    }
}

void outbox::track(std::uint32_t l, std::int64_t before) {
  auto after = links_[l].room();
  if (before == after) return;
  auto& e = edges_[links_[l].edge];
  e.room += std::max<std::int64_t>(0, after) - std::max<std::int64_t>(0, before);
  bool had = before > 0, has = after > 0;
  if (had == has) return;
  if (has) {
    if (e.with_room++ == 0) {
      --full_edges_;
      auto since = e.stat->blocked_since_ns.exchange(0, std::memory_order_relaxed);
      auto now = now_ns();
      if (since != 0 && now > since)
        e.stat->blocked_ns.fetch_add(static_cast<std::uint64_t>(now - since), std::memory_order_relaxed);
    }
  } else {
    lost_room(e);
  }
}

void outbox::lost_room(edge& e) {
  if (--e.with_room == 0) {
    ++full_edges_;
    e.stat->blocked_since_ns.store(now_ns(), std::memory_order_relaxed);
  }
}

std::uint32_t outbox::pick(edge& e) {
  auto n = static_cast<std::uint32_t>(e.links.size());
  if (n == 1) return e.links[0];
  if (tagging_) return e.links[(tag_.index + tag_.nth) % n];  // where the original sent it, when replaced
  // The link with the most room (the least queued replica), ties broken round robin. An idle replica
  // (all its credits back, nothing waiting) is as good as it gets: the scan stops there, so with idle
  // replicas a pick costs O(1) however wide the edge.
  std::uint32_t best = e.next;
  std::int64_t best_room = std::numeric_limits<std::int64_t>::min();
  for (std::uint32_t k = 0; k < n; ++k) {
    auto i = (e.next + k) % n;
    const auto& l = links_[e.links[i]];
    auto r = l.room();
    if (r > best_room) {
      best_room = r;
      best = i;
      if (r >= l.capacity) break;
    }
  }
  e.next = (best + 1) % n;
  return e.links[best];
}

void outbox::push_counted(std::uint32_t l, value&& v) {
  auto& k = links_[l];
  auto nb = link_bytes(v);
  // The common case, without room()'s divisions: the bytes left after this value still hold at least the
  // credits' count of values at the guessed size, so room is the credit count before and after (as in
  // push()): it drops by one.
  if (auto r = k.credits - static_cast<std::int64_t>(k.pending.size()); r > 0 && k.budget - (k.bytes + nb) >= r * k.unit) {
    k.bytes += nb;
    k.queued += nb;
    append(k, std::move(v));
    took_one(k, r);
    return;
  }
  auto before = k.room();
  k.bytes += nb;
  k.queued += nb;
  append(k, std::move(v));
  track(l, before);
}

void outbox::mark(std::uint32_t l) {
  auto& k = links_[l];
  k.attempt = attempt_;
  k.mark = k.pending.size();
  touched_.push_back(l);
}

bool outbox::emit_any(std::size_t port, value&& v) {
  const auto& edges = ports_[port];
  if (edges.empty()) return false;
  // Fan-out: every edge but the last gets a copy of the handle (the payload is shared), the last the value.
  for (std::size_t i = 0; i + 1 < edges.size(); ++i) push(pick(edges_[edges[i]]), value(v));
  push(pick(edges_[edges.back()]), std::move(v));
  return true;
}

bool outbox::emit_run(std::size_t port, std::span<const value> values) {
  const auto& edges = ports_[port];
  if (edges.empty()) return false;
  if (values.empty()) return true;
  if (edges.size() == 1 && edges_[edges[0]].links.size() == 1 && !tagging_) {
    auto l = edges_[edges[0]].links[0];
    track(l, append_run(l, values));
    return true;
  }
  for (const auto& v : values) emit_any(port, value(v));
  return true;
}

void outbox::emit_mapped(std::span<const value> values, link_id link, std::uint64_t first) {
  if (values.empty()) return;
  auto l = edges_[ports_[0][0]].links[0];
  auto before = append_run(l, values);
  links_[l].tags.push_run(link, 0, first, values.size());
  track(l, before);
}

std::int64_t outbox::append_run(std::uint32_t l, std::span<const value> values) {
  auto& k = prepare(l, values.size());
  auto before = k.room();
  if (k.budget > 0) {
    auto b = link_bytes(values);
    k.bytes += b;
    k.queued += b;
  }
  k.pending.insert(k.pending.end(), values.begin(), values.end());
  return before;
}

std::size_t outbox::budget() const {
  if (edges_.empty()) return 1024;
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  for (const auto& e : edges_) best = std::min(best, e.room);
  return static_cast<std::size_t>(std::max<std::int64_t>(0, best));
}

bool outbox::credit(link_id id, std::uint32_t n) {
  if (id >= links_.size()) return false;
  auto& k = links_[id];
  // Credits never exceed the capacity: a consumer returns only what it was sent.
  if (n == 0 || k.credits + static_cast<std::int64_t>(n) > k.capacity) return false;
  auto before = k.room();
  k.credits += n;
  // The first n values in flight were consumed: their bytes are free (a batch credited in part frees its
  // share, the rest with its last value).
  for (std::int64_t left = n; left > 0 && !k.flight.empty();) {
    auto& [values, bytes] = k.flight.front();
    if (values <= left) {
      k.bytes -= bytes;
      left -= values;
      k.flight.pop_front();
    } else {
      auto freed = bytes * left / values;
      bytes -= freed;
      values -= left;
      k.bytes -= freed;
      left = 0;
    }
  }
  track(id, before);
  return true;
}

std::uint64_t outbox::flush(caf::event_based_actor* self, bool more) {
  std::uint64_t sent = 0;
  std::size_t keep = 0;
  for (std::size_t d = 0; d < dirty_.size(); ++d) {
    auto li = dirty_[d];
    auto& k = links_[li];
    auto ready = committed(k);
    auto n = static_cast<std::size_t>(std::min<std::int64_t>(k.credits, static_cast<std::int64_t>(ready)));
    // A busy producer's link to another host waits for a fuller batch (never past its credits: a link
    // with no room left always sends, so the producer is never blocked by what it holds itself).
    // A link out of room (its bytes taken) sends too.
    if (more && k.elsewhere && static_cast<std::int64_t>(n) < std::min(k.credits, remote_batch) && k.room() > 0)
      n = 0;
    if (n > 0 && k.budget > 0) {
      // The bytes stay held (now in flight, until credited); the next values are guessed at this batch's
      // mean size. Room changes with the guess.
      auto before = k.room();
      auto b = n < k.pending.size() ? link_bytes(std::span<const value>(k.pending).first(n)) : k.queued;
      k.queued -= b;
      k.flight.emplace_back(static_cast<std::int64_t>(n), b);
      k.unit = std::max<std::int64_t>(16, b / static_cast<std::int64_t>(n));
      track(li, before);
    }
    if (n > 0) {
      // Room is unchanged: credits and pending both drop by n.
      k.credits -= static_cast<std::int64_t>(n);
      sent += n;
      if (open_ && k.attempt == attempt_) k.mark -= n;  // the attempt's values sit behind the sent ones
      lineage_tags tags;
      if (tagging_) tags = k.tags.take_front(n);
      if (n == k.pending.size()) {
        k.reserve = n;
        self->send(k.target, batch_msg{k.remote, std::move(k.pending), no_index, std::move(tags), k.consumer});
        k.pending = {};
      } else {
        auto head = pool_->take(n);
        head.insert(head.end(), std::make_move_iterator(k.pending.begin()),
                    std::make_move_iterator(k.pending.begin() + static_cast<std::ptrdiff_t>(n)));
        k.pending.erase(k.pending.begin(), k.pending.begin() + static_cast<std::ptrdiff_t>(n));
        self->send(k.target, batch_msg{k.remote, std::move(head), no_index, std::move(tags), k.consumer});
      }
    }
    if (k.pending.empty()) {
      k.dirty = false;
    } else {
      dirty_[keep++] = li;
    }
  }
  dirty_.resize(keep);
  return sent;
}

void outbox::close(caf::event_based_actor* self) {
  for (const auto& k : links_) self->send(k.target, eos_msg{k.remote, k.consumer});
  // A closed producer waits for nothing: an edge left full by its last values stops counting.
  auto now = now_ns();
  for (auto& e : edges_) {
    auto since = e.stat->blocked_since_ns.exchange(0, std::memory_order_relaxed);
    if (since != 0 && now > since)
      e.stat->blocked_ns.fetch_add(static_cast<std::uint64_t>(now - since), std::memory_order_relaxed);
  }
}

std::vector<outbox::unsent> outbox::committed_unsent() const {
  std::vector<unsent> out;
  for (link_id l = 0; l < links_.size(); ++l) {
    auto n = committed(links_[l]);
    if (n == 0) continue;
    out.push_back(unsent{l, std::vector<value>(links_[l].pending.begin(),
                                               links_[l].pending.begin() + static_cast<std::ptrdiff_t>(n))});
  }
  return out;
}

void outbox::send_barrier(caf::event_based_actor* self, std::uint64_t epoch) {
  for (const auto& l : links_) self->send(l.target, barrier_msg{l.remote, epoch, l.consumer});
}

bool outbox::restore(const std::vector<unsent>& outputs) {
  for (const auto& u : outputs) {
    if (u.link >= links_.size()) return false;
    for (const auto& v : u.values) push(u.link, value(v));
  }
  return true;
}

void outbox::begin() {
  ++attempt_;
  open_ = true;
  touched_.clear();
}

void outbox::commit() { open_ = false; }

void outbox::rollback() {
  for (auto li : touched_) {
    auto& k = links_[li];
    auto before = k.room();
    if (k.budget > 0) {
      auto b = link_bytes(std::span<const value>(k.pending).subspan(k.mark));
      k.bytes -= b;
      k.queued -= b;
    }
    k.pending.resize(k.mark);
    if (tagging_) k.tags.truncate(k.mark);
    track(li, before);
  }
  touched_.clear();
  open_ = false;
}

}  // namespace loom::local
