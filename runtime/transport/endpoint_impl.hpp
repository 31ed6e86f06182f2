// runtime/transport/endpoint_impl.hpp: what the endpoint's I/O thread holds (endpoint::impl), shared by the
// files that make up its work (internal; included by runtime/transport/endpoint*.cpp only):
//   endpoint.cpp         the public API, the command queue (any thread -> the I/O thread) and the commands
//   endpoint_loop.cpp    the poll loop, the receive path (decode, sequence check, acks due) and shutdown
//   endpoint_dealer.cpp  the dealer side: connect, handshake events, deadlines, flush, resend after reconnect
//   endpoint_router.cpp  the router side: bind, ZAP, handshake refusals, flush, messages parked for a peer
// The stream rule itself is in plain state machines with their own tests: outbound.hpp (kept until
// acknowledged), inbound.hpp (arrived, gaps, acks due), fences.hpp (credits of movable instances).
#pragma once

#include <fmt/format.h>
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/transport/credit_gate.hpp"
#include "loom/runtime/transport/endpoint.hpp"
#include "loom/runtime/transport/fences.hpp"
#include "loom/runtime/transport/inbound.hpp"
#include "loom/runtime/transport/outbound.hpp"

namespace loom::transport {
namespace detail {

// A peer's name for a log line: a stray client's routing id is binary (ZeroMQ makes one starting with a
// NUL byte), which would cut the line short; such a name is written in hex.
inline std::string printable(const std::string& peer) {
  bool text = !peer.empty() && std::all_of(peer.begin(), peer.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (text) return peer;
  std::string hex = "0x";
  for (unsigned char c : peer) hex += fmt::format("{:02x}", c);
  return hex;
}

using clock = std::chrono::steady_clock;

// The commands other threads hand to the I/O thread (endpoint::impl::push).
struct cmd_send {
  std::optional<peer_id> peer;  // a DEALER we connected, or else
  std::string name;             // a peer on our ROUTER
  multipart parts;
  std::optional<std::pair<stream_key, std::uint64_t>> numbered;  // a data envelope: kept until acknowledged
  // A credit envelope, encoded on the I/O thread (parts empty) so that an ack can ride on it.
  std::optional<envelope> credit;
  bool fenced = false;    // from a movable instance (endpoint::send_fenced)
  bool released = false;  // a held fenced message, now free to go
};

// The stream that answers `k`: credits from `to` back to `from` go on it.
inline stream_key reverse(const stream_key& k) { return {k.run, k.to, k.from}; }
struct cmd_bind {
  std::string address;
  std::promise<std::string> done;
};
struct cmd_connect {
  std::string address;
  connect_options opts;
  std::promise<peer_id> done;
};
struct cmd_stop {};
struct cmd_forget {
  std::uint64_t run;
  std::promise<void> done;
  std::optional<std::uint32_t> from;  // only what arrived from this instance
};
struct cmd_drop {
  peer_id peer;
};
using command = std::variant<cmd_send, cmd_bind, cmd_connect, cmd_stop, cmd_forget, cmd_drop>;

}  // namespace detail

struct endpoint::impl {
  using clock = detail::clock;
  using command = detail::command;
  using cmd_send = detail::cmd_send;
  using cmd_bind = detail::cmd_bind;
  using cmd_connect = detail::cmd_connect;
  using cmd_stop = detail::cmd_stop;
  using cmd_forget = detail::cmd_forget;
  using cmd_drop = detail::cmd_drop;

  struct dealer {
    peer_id id = 0;  // its index in `dealers`: the owner of what it sent (outbound)
    std::string address;
    connect_options opts;
    std::optional<zmq::socket_t> sock;
    std::optional<zmq::socket_t> mon;
    // Waiting to be handed to zmq; `numbered`: a data envelope, kept once sent until acknowledged.
    struct queued {
      multipart parts;
      std::optional<std::pair<stream_key, std::uint64_t>> numbered;
    };
    std::deque<queued> pending;
    bool up = false, was_up = false;
    std::optional<clock::time_point> down_since;  // closed after being up, not back yet
    bool silence_reported = false;
    std::optional<std::promise<peer_id>> waiting;
    clock::time_point deadline;
  };

  impl(endpoint_config c, endpoint_callbacks b);
  ~impl();

  // endpoint.cpp: the command queue and the commands
  void push(command c);  // from any thread; a send from the I/O thread itself is handled at once
  void report(problem::kind k, std::string peer, std::string text);
  void report(problem p);
  void handle(cmd_stop&) { stopping = true; }
  void handle(cmd_drop& c);
  void handle(cmd_forget& c);
  void handle(cmd_send& c);
  bool fence(cmd_send& c);

  // endpoint_loop.cpp: the poll loop and the receive path
  void run();
  void drain_commands();
  void receive(zmq::socket_t& s, bool routed, const std::string& address, std::size_t dealer_index = 0);
  void deliver(std::string peer, multipart parts, std::string key, bool routed, std::size_t from_dealer);
  void hand_over(incoming&& in);  // to the owner (on_message)
  void send_acks(bool all);
  void check_gaps();
  static std::size_t bytes_of(const multipart& parts, std::size_t from);
  bool send_one(zmq::socket_t& s, multipart& parts);
  void shutdown();

  // endpoint_dealer.cpp: the sockets we connected
  void handle(cmd_connect& c);
  void fail_connect(dealer& d, const std::string& why);
  void check_deadlines();
  void dealer_events(peer_id id);
  void flush_dealer(dealer& d);
  void resend(dealer& d);
  void acknowledged(const stream_key& stream, std::uint64_t next);
  void note_fence_ack(const stream_key& stream, std::uint64_t next);

  // endpoint_router.cpp: the socket we bound
  void handle(cmd_bind& c);
  std::string bind_router(std::string address);
  void router_events();
  void zap_request();
  void flush_router();
  void retry_parked();

  endpoint_config cfg;
  endpoint_callbacks cb;
  std::mutex allowed_mu;
  std::unordered_set<std::string> allowed;
  zmq::context_t ctx;
  int wake_fd = -1;
  std::mutex mu;
  std::deque<command> queue;
  std::thread io;
  std::thread::id io_id;  // set before any callback can run
  // Only the I/O thread touches what follows.
  bool stopping = false;
  std::optional<zmq::socket_t> router, router_mon, zap;
  std::deque<multipart> router_pending;
  std::vector<std::unique_ptr<dealer>> dealers;
  // The streams received: sequence numbers, gaps, acks due (inbound.hpp; one lookup per envelope).
  inbound_streams inbound;
  // Written by the I/O thread only (a relaxed load and store: no locked instruction), read by stats().
  struct stat {
    std::atomic<std::uint64_t> v{0};
    void add(std::int64_t n) { v.store(v.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(n), std::memory_order_relaxed); }
    void set(std::uint64_t n) { v.store(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
  };
  stat acks_piggybacked, acks_separate, kept_count, repeats_dropped, fenced_count, gated_count;
  // What went out on our DEALERs and is not acknowledged yet (outbound.hpp).
  outbound_streams outbound;

  fences<cmd_send> fenced;  // the credits of movable instances that wait for acknowledgements (fences.hpp)
  credit_gate<incoming> gate;  // received credits of movable instances that wait for their data (credit_gate.hpp)
  observe::link_meters links;  // loom_link_bytes_total / _messages_total, counted on this (the I/O) thread
  struct parked_msg {
    clock::time_point until;
    multipart parts;
  };
  std::deque<parked_msg> parked;               // for peers on our ROUTER that were not connected
  std::unordered_set<std::string> parked_names;
};

}  // namespace loom::transport
