// runtime/transport/fences.hpp: the sending half of the fences of movable instances (endpoint::send_fenced,
// docs/cluster.md "Losing a host"), as a plain state machine (no socket, no thread: the endpoint's I/O
// thread owns one). A credit a movable instance sends must not reach its producer's host before every data
// envelope the instance handed to the endpoint before it has reached its receiver's host:
// - data to *the credit's own peer* travels ahead of the credit on the same connection: the credit goes at
//   once and names those streams (envelope::after, from follows_to()); the receiving endpoint delivers it
//   only once they arrived up to there (credit_gate.hpp). No round trip.
// - data to *other peers*: the credit waits here until each such envelope is acknowledged by its receiver's
//   endpoint; anything the instance sends behind a waiting credit on the same stream waits behind it, so
//   each stream keeps its order. `Item` is what waits (the endpoint's send command).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/runtime/transport/codec.hpp"

namespace loom::transport {

template <class Item>
class fences {
 public:
  // `item` of stream `k` to peer `peer`, from a movable instance: a credit (`credit`), or a data envelope
  // numbered `data_seq`, or neither. Returns true when it waits here (taken); false: it may go now (left
  // as is). A credit waits only for data handed to other peers (follows_to() names the rest).
  bool hold(const stream_key& k, std::uint32_t peer, bool credit, std::optional<std::uint64_t> data_seq, Item& item) {
    stream_key sender{k.run, k.from, 0};
    if (!credit && data_seq) {  // data: the credits after it wait for it
      auto& list = handed_[sender];
      auto it = std::find_if(list.begin(), list.end(), [&](const handed& x) { return x.stream == k; });
      if (it == list.end())
        list.push_back({k, *data_seq + 1, peer});
      else
        it->next = *data_seq + 1;
    }
    auto h = held_.find(k);
    if (h != held_.end() && !h->second.empty()) {
      h->second.push_back({std::move(item), {}});
      return true;
    }
    if (!credit) return false;
    std::vector<std::pair<stream_key, std::uint64_t>> wait;
    if (auto it = handed_.find(sender); it != handed_.end())
      for (const auto& h : it->second)
        if (h.peer != peer && acked_next(h.stream) < h.next) wait.emplace_back(h.stream, h.next);
    if (wait.empty()) return false;
    held_[k].push_back({std::move(item), std::move(wait)});
    ++fenced_;
    return true;
  }

  // A credit of stream `k` going to `peer`: the data streams of its sender handed to that same peer and
  // not acknowledged yet, up to what was handed (the credit's envelope::after).
  std::vector<follows> follows_to(const stream_key& k, std::uint32_t peer) const {
    std::vector<follows> out;
    if (auto it = handed_.find(stream_key{k.run, k.from, 0}); it != handed_.end())
      for (const auto& h : it->second)
        if (h.peer == peer && acked_next(h.stream) < h.next) out.push_back({h.stream.to, h.next});
    return out;
  }

  // Every envelope of `stream` below `next` was acknowledged: what may go now, in order per stream.
  std::vector<Item> acknowledged(const stream_key& stream, std::uint64_t next) {
    std::vector<Item> out;
    if (!handed_.contains(stream_key{stream.run, stream.from, 0})) return out;
    auto& a = acked_[stream];
    if (next <= a) return out;
    a = next;
    if (held_.empty()) return out;
    for (auto& [k, q] : held_) {
      while (!q.empty()) {
        bool ready = std::all_of(q.front().wait.begin(), q.front().wait.end(),
                                 [&](const auto& w) { return acked_next(w.first) >= w.second; });
        if (!ready) break;
        out.push_back(std::move(q.front().item));
        q.pop_front();
      }
    }
    std::erase_if(held_, [](const auto& kv) { return kv.second.empty(); });
    return out;
  }

  void forget_run(std::uint64_t run) {
    std::erase_if(handed_, [&](const auto& kv) { return kv.first.run == run; });
    std::erase_if(acked_, [&](const auto& kv) { return kv.first.run == run; });
    std::erase_if(held_, [&](const auto& kv) { return kv.first.run == run; });
  }

  std::uint64_t fenced() const { return fenced_; }  // credits held so far

 private:
  std::uint64_t acked_next(const stream_key& k) const {
    auto it = acked_.find(k);
    return it == acked_.end() ? 0 : it->second;
  }
  struct held_item {
    Item item;
    std::vector<std::pair<stream_key, std::uint64_t>> wait;  // each stream acknowledged up to there
  };
  struct handed {
    stream_key stream;
    std::uint64_t next = 0;  // the next seq after the last handed to the endpoint
    std::uint32_t peer = 0;  // where it goes
  };
  // Per movable sender {run, from, 0}: each of its data streams.
  std::unordered_map<stream_key, std::vector<handed>, stream_key_hash> handed_;
  std::unordered_map<stream_key, std::uint64_t, stream_key_hash> acked_;  // per stream: acknowledged below
  std::unordered_map<stream_key, std::deque<held_item>, stream_key_hash> held_;  // per stream, in order
  std::uint64_t fenced_ = 0;
};

}  // namespace loom::transport
