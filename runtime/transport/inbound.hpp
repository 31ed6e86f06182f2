// runtime/transport/inbound.hpp: the receiving half of the reliable stream rule, as a plain state machine
// (no socket, no thread: the endpoint's I/O thread owns one and feeds it). Per (run, from, to) stream it
// keeps the next sequence number expected and says what to do with each arriving envelope: deliver it (the
// next one), drop it (a repeat, resent after a reconnect), or hold nothing and note a gap (it is ahead; the
// resends fill the gap in order, or the gap is reported once it is older than the gap timeout). For the
// streams that come in on the bound socket (their senders keep each envelope until it is acknowledged) it
// says when an ack is due: riding on a credit going back (piggyback), or as a separate Ack once a stream
// gathered `ack_every` envelopes or found no credit to ride on for a whole tick (10 to 20 ms); an urgent
// envelope (envelope::ack_now: a movable instance's output, whose sender's credits wait for it) is acked at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/runtime/transport/codec.hpp"
#include "loom/runtime/transport/endpoint.hpp"

namespace loom::transport {

class inbound_streams {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::uint32_t ack_every = 64;
  static constexpr std::chrono::milliseconds ack_delay{10};

  enum class verdict { deliver, repeat, ahead };
  // Envelope `seq` of `stream` arrived from `peer`. `routed`: on the bound socket, so its sender keeps it
  // until acknowledged and an ack becomes due once it is delivered. `urgent`: its sender waits for the ack
  // (envelope::ack_now: a movable instance's credits are fenced behind it), so the ack is due at once, at the
  // next due_acks (the end of the I/O thread's turn), unless a credit takes it first.
  verdict arrived(const stream_key& stream, std::uint64_t seq, const std::string& peer, bool routed,
                  bool urgent = false);

  // The next seq expected on `stream` (every one below it arrived); 0 for a stream not seen.
  std::uint64_t next(const stream_key& stream) const {
    auto it = in_.find(stream);
    return it == in_.end() ? 0 : it->second.next;
  }

  // A credit of the reverse stream is going back: the ack it may carry for `stream` (every seq below it
  // arrived), now counted as sent; 0 when none is due.
  std::uint64_t piggyback(const stream_key& stream);

  // The separate acks due at `now`, per peer name (the sender on the bound socket); `all`: every ack due
  // (closing). A stream acked on a credit since drops out.
  std::unordered_map<std::string, control::ack> due_acks(bool all, clock::time_point now);
  bool acks_pending() const { return !ack_list_.empty(); }

  // Gaps older than `timeout` at `now`, each reported once (problem::kind::sequence, with its text).
  std::vector<problem> overdue_gaps(clock::time_point now, std::chrono::milliseconds timeout);
  bool has_gaps() const { return !gaps_.empty(); }

  // Forgets run `run` (or only what came from instance `from` of it: it moved, and numbers from 0 again).
  void forget(std::uint64_t run, std::optional<std::uint32_t> from = std::nullopt);

 private:
  struct stream_in {
    std::uint64_t next = 0;
    std::uint64_t acked = 0;   // the last `next` acknowledged to its sender
    std::uint32_t count = 0;   // envelopes since that ack
    bool routed = false;       // it comes in on the bound socket (its sender keeps it until acknowledged)
    bool listed = false;       // in ack_list_
    bool marked = false;       // unacknowledged at the last tick: a separate Ack at the next one
    bool urgent = false;       // an envelope whose sender waits for the ack arrived since that ack
    std::string peer;          // the sender's name on the bound socket
  };
  struct gap {
    clock::time_point since;
    std::string peer;
    std::uint64_t expected = 0, actual = 0;
    bool reported = false;
  };
  std::unordered_map<stream_key, stream_in, stream_key_hash> in_;
  std::vector<stream_key> ack_list_;  // streams with an ack due
  bool acks_now_ = false;             // a stream gathered ack_every envelopes, or an urgent one arrived
  clock::time_point next_tick_{};
  std::unordered_map<stream_key, gap, stream_key_hash> gaps_;
};

}  // namespace loom::transport
