// runtime/transport/inbound.cpp: sequence checks, gaps and ack timing of the streams an endpoint receives.
#include "loom/runtime/transport/inbound.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace loom::transport {

inbound_streams::verdict inbound_streams::arrived(const stream_key& stream, std::uint64_t seq,
                                                  const std::string& peer, bool routed, bool urgent) {
  auto& in = in_[stream];
  if (seq < in.next) return verdict::repeat;  // a resend of what arrived before the reconnect
  if (seq > in.next) {  // ahead of a gap: the resends will fill it in order, or the gap is reported
    auto [g, fresh] = gaps_.try_emplace(stream, gap{clock::now(), peer, in.next, seq, false});
    if (!fresh) g->second.actual = std::max(g->second.actual, seq);
    return verdict::ahead;
  }
  ++in.next;
  if (!gaps_.empty()) gaps_.erase(stream);
  if (routed) {  // its sender keeps it until acknowledged: an ack is due
    if (!in.routed) {
      in.routed = true;
      in.peer = peer;
    }
    if (!in.listed) {
      in.listed = true;
      ack_list_.push_back(stream);
    }
    if (++in.count >= ack_every) acks_now_ = true;
    if (urgent) {
      in.urgent = true;
      acks_now_ = true;
    }
  }
  return verdict::deliver;
}

std::uint64_t inbound_streams::piggyback(const stream_key& stream) {
  auto it = in_.find(stream);
  if (it == in_.end() || !it->second.routed || it->second.next <= it->second.acked) return 0;
  auto& in = it->second;
  in.acked = in.next;
  in.count = 0;
  in.marked = false;
  in.urgent = false;
  return in.next;
}

std::unordered_map<std::string, control::ack> inbound_streams::due_acks(bool all, clock::time_point now) {
  std::unordered_map<std::string, control::ack> out;
  bool tick = all || acks_now_ || now >= next_tick_;
  if (!tick) return out;
  bool timed = all || now >= next_tick_;
  if (now >= next_tick_) next_tick_ = now + ack_delay;
  acks_now_ = false;
  std::erase_if(ack_list_, [&](const stream_key& k) {
    auto it = in_.find(k);
    if (it == in_.end()) return true;
    auto& in = it->second;
    if (in.next == in.acked) {  // acked on a credit since
      in.listed = false;
      in.marked = false;
      in.urgent = false;
      return true;
    }
    if (!(all || in.count >= ack_every || in.urgent || (timed && in.marked))) {
      if (timed) in.marked = true;  // due at the next tick unless a credit takes it first
      return false;
    }
    out[in.peer].streams.push_back({k, in.next});
    in.acked = in.next;
    in.count = 0;
    in.listed = false;
    in.marked = false;
    in.urgent = false;
    return true;
  });
  return out;
}

std::vector<problem> inbound_streams::overdue_gaps(clock::time_point now, std::chrono::milliseconds timeout) {
  std::vector<problem> out;
  for (auto& [k, g] : gaps_) {
    if (g.reported || now - g.since < timeout) continue;
    g.reported = true;
    problem p{problem::kind::sequence, g.peer, {}, k, g.expected, g.actual};
    p.text = fmt::format("{} from {}: expected seq {}, got up to {}: {} message(s) lost (not resent within {} ms)",
                         to_string(k), g.peer, g.expected, g.actual, g.actual - g.expected, timeout.count());
    out.push_back(std::move(p));
  }
  return out;
}

void inbound_streams::forget(std::uint64_t run, std::optional<std::uint32_t> from) {
  auto match = [&](const stream_key& k) { return k.run == run && (!from || k.from == *from); };
  std::erase_if(in_, [&](const auto& kv) { return match(kv.first); });
  std::erase_if(gaps_, [&](const auto& kv) { return match(kv.first); });
  std::erase_if(ack_list_, [&](const stream_key& k) { return match(k); });
}

}  // namespace loom::transport
