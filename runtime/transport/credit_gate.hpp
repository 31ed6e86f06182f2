// runtime/transport/credit_gate.hpp: the receiving half of the fences of movable instances (fences.hpp),
// as a plain state machine (no socket, no thread: the endpoint's I/O thread owns one). A movable instance's
// credit names the data streams of its sender to this host that it follows (envelope::after: stream
// {run, from, to} up to `next`); the endpoint delivers it only once each of those arrived up to there, so a
// producer never learns "consumed" before the outputs of what was consumed are here. Anything that arrives
// on the credit's stream behind a waiting credit waits behind it, in order. Both ends of a fenced credit
// usually share one connection, so its data is already here and it waits for nothing; it waits only when
// that data was lost on the way (a reconnect) and is being resent, or never comes (its host was lost: the
// credit is forgotten with the sender, and its producer sends the values again to the replacement).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include "loom/runtime/transport/codec.hpp"

namespace loom::transport {

template <class Item>
class credit_gate {
 public:
  // Past this many waiting items the gate refuses more (hold() returns refused): a sender naming data that
  // never comes cannot grow this host's memory without bound.
  static constexpr std::size_t max_waiting = 65536;

  enum class verdict { deliver, wait, refused };

  // `item` arrived (in order) on `stream`, following `after` (envelope::after; empty: a plain envelope).
  // `arrived(k)`: the next seq expected on stream k (everything below it arrived). deliver: `item` is left
  // as is and goes now; wait: taken, released by ready(); refused: dropped (max_waiting).
  template <class Arrived>
  verdict hold(const stream_key& stream, const std::vector<follows>& after, Item& item, Arrived&& arrived) {
    auto q = waiting_.find(stream);
    bool behind = q != waiting_.end() && !q->second.empty();
    if (!behind && met(stream, after, arrived)) return verdict::deliver;
    if (count_ >= max_waiting) return verdict::refused;
    waiting_[stream].push_back({std::move(item), after});
    ++count_;
    return verdict::wait;
  }

  // What may go now (after more data arrived), in order per stream.
  template <class Arrived>
  std::vector<Item> ready(Arrived&& arrived) {
    std::vector<Item> out;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      auto& q = it->second;
      while (!q.empty() && met(it->first, q.front().after, arrived)) {
        out.push_back(std::move(q.front().item));
        q.pop_front();
        --count_;
      }
      it = q.empty() ? waiting_.erase(it) : std::next(it);
    }
    return out;
  }

  // Forgets what waits from run `run` (or only from instance `from` of it: it moved, its replacement
  // numbers its streams from 0 and its producers send the values again). Returns how many were dropped.
  std::size_t forget(std::uint64_t run, std::optional<std::uint32_t> from = std::nullopt) {
    std::size_t n = 0;
    std::erase_if(waiting_, [&](const auto& kv) {
      if (kv.first.run != run || (from && kv.first.from != *from)) return false;
      n += kv.second.size();
      return true;
    });
    count_ -= n;
    return n;
  }

  bool empty() const { return count_ == 0; }
  std::size_t waiting() const { return count_; }

 private:
  template <class Arrived>
  static bool met(const stream_key& stream, const std::vector<follows>& after, Arrived& arrived) {
    for (const auto& f : after)
      if (arrived(stream_key{stream.run, stream.from, f.to}) < f.next) return false;
    return true;
  }
  struct entry {
    Item item;
    std::vector<follows> after;
  };
  std::unordered_map<stream_key, std::deque<entry>, stream_key_hash> waiting_;
  std::size_t count_ = 0;
};

}  // namespace loom::transport
