// runtime/transport/outbound.hpp: the sending half of the reliable stream rule, as a plain store (no
// socket, no thread: the endpoint's I/O thread owns one). Every data envelope sent on a connection this
// endpoint opened is kept here, per (run, from, to) stream and in seq order, until the receiver acknowledges
// it; after the connection comes back, what is still kept goes again, in order per stream. A kept envelope
// shares its buffers with the one sent (zmq_msg_copy: a reference, not a copy of the data).
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/runtime/transport/codec.hpp"

namespace loom::transport {

class outbound_streams {
 public:
  using owner_id = std::uint32_t;  // the connection a stream's envelopes went out on
  struct kept_msg {
    std::uint64_t seq = 0;
    zmq::message_t head;
    multipart rest;  // empty for a header-only envelope (the common case)
  };
  // A copy of `parts` that shares their buffers, taken before ZeroMQ takes the parts.
  static kept_msg copy(std::uint64_t seq, multipart& parts);
  // The parts to send again (sharing the kept buffers).
  static multipart parts_of(kept_msg& k);

  // `m` of `stream` went out on `owner`: kept until acknowledged.
  void keep(const stream_key& stream, owner_id owner, kept_msg&& m);
  // Every kept envelope of `stream` below `next` arrived: forgotten.
  void acknowledged(const stream_key& stream, std::uint64_t next);
  // Everything kept for `owner`, in order per stream, handed back to be sent again (and kept again as it
  // goes out).
  std::vector<std::pair<stream_key, kept_msg>> take(owner_id owner);
  void forget_run(std::uint64_t run);
  void forget_owner(owner_id owner);
  std::size_t kept() const { return kept_; }

 private:
  struct stream_out {
    owner_id owner = 0;
    std::deque<kept_msg> kept;
  };
  stream_out* find(const stream_key& k);
  template <class Pred>
  void forget(Pred pred);
  std::unordered_map<stream_key, stream_out, stream_key_hash> out_;
  stream_out* last_ = nullptr;  // the stream of the last envelope kept (pointers into the map are stable)
  stream_key last_key_;
  std::size_t kept_ = 0;
};

}  // namespace loom::transport
