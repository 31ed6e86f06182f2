// runtime/transport/endpoint.hpp: one process's ZeroMQ endpoint. It binds one ROUTER socket that peers
// connect to, opens one DEALER socket per peer it connects to, and owns all of them on ONE I/O thread (zmq
// sockets are not thread-safe). Any thread may send: the message is encoded in the sending thread and handed
// to the I/O thread through a mutex-guarded queue and an eventfd wake-up. Everything received is decoded
// and checked on the I/O thread, which then calls `on_message`; anything wrong (bad bytes, a sequence gap or
// repeat, a refused or lost peer) goes to `on_problem`, never silently dropped. Framing: docs/wire.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/runtime/transport/codec.hpp"
#include "loom/runtime/transport/keys.hpp"

namespace loom::transport {

// Thrown by bind and connect; the message names the address and what to do.
struct transport_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct endpoint_config {
  std::string name;  // this process on the wire (the routing id its DEALERs announce); unique per cluster
  // CurveZMQ: this process's key pair. When set, the bound socket is a curve server that accepts only the
  // client keys in `allowed_clients` (an empty list accepts no one), and every connect is a curve client.
  // Unset: plain TCP, for trusted networks only.
  std::optional<curve_keypair> curve;
  std::vector<std::string> allowed_clients;  // z85 public keys
  encode_options encode;
  decode_limits limits;
  // ZMQ_MAXMSGSIZE: a peer that sends a larger part is disconnected before the part is read (the cluster
  // file's `max_message_size`). The decoder's header limit is capped to it too.
  std::int64_t max_part_bytes = std::int64_t{64} << 20;
  // ZMTP heartbeats on every socket (ZMQ_HEARTBEAT_IVL / _TIMEOUT / _TTL) and TCP keepalive: a connection
  // whose peer is gone or hung is closed within `heartbeat_timeout` instead of staying half open.
  std::chrono::milliseconds heartbeat_ivl{1000};
  std::chrono::milliseconds heartbeat_timeout{5000};
  // A sequence gap (messages after a loss) that resends have not filled within this is reported as lost.
  std::chrono::milliseconds gap_timeout{5000};
  // A connection this endpoint opened that closed (its peer silent past heartbeat_timeout, or a reset) and
  // has not come back within this is reported once as `silent` (a reset reconnects within ~100 ms).
  std::chrono::milliseconds link_grace{1000};
  // A message for a peer on the bound socket that is not connected (it may be reconnecting) is retried for
  // this long before it is dropped and reported. 0: report at once.
  std::chrono::milliseconds reconnect_grace{5000};
  std::chrono::milliseconds linger{2000};               // how long close waits to deliver what is queued
};

struct connect_options {
  std::string server_key;  // z85 public key of the peer's curve server (required when curve is configured)
  std::chrono::milliseconds timeout{10000};  // zmq retries every 100 ms until then
  std::string role = "peer";                 // for the message: "worker tcp://... not reachable after 10 s"
};

using peer_id = std::uint32_t;  // a peer this endpoint connected to, in connect order

struct incoming {
  std::string peer;  // the sender's name (on the bound socket) or the address it was connected to
  message msg;
  // With CurveZMQ, on the bound socket: the z85 public key the sender authenticated with (ZAP User-Id).
  // A name is only claimed; this key is proven. Empty without curve.
  std::string peer_key;
};

struct problem {
  // silent: a connection this endpoint opened closed and did not come back within link_grace (`peer`: its
  // address). Reported once per outage.
  enum class kind { decode, sequence, refused, disconnected, send, silent };
  problem::kind what;
  std::string peer;  // name, address or client key, as known
  std::string text;  // one line for a log or a run report
  std::optional<stream_key> stream;  // sequence problems: the stream, and the seq expected and received
  std::uint64_t expected = 0, actual = 0;
};

struct endpoint_callbacks {
  std::function<void(incoming&&)> on_message;         // runs on the I/O thread: keep it short, never block
  // Likewise. When set, the owner logs the problem (in its own format); when not, the endpoint does
  // (spdlog): one line per problem either way.
  std::function<void(const problem&)> on_problem;
};

class endpoint {
 public:
  endpoint(endpoint_config cfg, endpoint_callbacks callbacks);
  ~endpoint();  // flushes for up to `linger`, then stops the I/O thread
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  // Binds the ROUTER on tcp://HOST:PORT (PORT 0 or *: a free port) and returns the address bound.
  // Blocks until the I/O thread has done it; never call from a callback. Throws transport_error.
  std::string bind(const std::string& address);
  // Connects to a peer's bound address and waits for the ZMTP (and curve) handshake to succeed; throws
  // transport_error when it is refused or not reachable within the timeout. Never call from a callback.
  peer_id connect(const std::string& address, const connect_options& opts = {});

  // Encodes here and queues for the I/O thread; never blocks on the network. Data envelopes carry the seq
  // their sender gave them (see stream_numbering). Throws encode_error for a value the wire cannot carry.
  void send(peer_id to, const envelope& e);
  // The same, for an instance that may move (docs/cluster.md): a credit it sends goes out only once every
  // data envelope it sent before (through this call) is acknowledged by its receiver's endpoint. A credit
  // then says "the outputs of these inputs are on their consumers' hosts".
  void send_fenced(peer_id to, const envelope& e);
  void send(peer_id to, const control_msg& c);
  // To a peer that connected to this endpoint's bound socket, by its name (incoming::peer).
  void send_to_name(const std::string& name, const envelope& e);
  void send_to_name(const std::string& name, const control_msg& c);
  // Already encoded parts.
  void send_parts(peer_id to, multipart parts);
  void send_parts_to_name(const std::string& name, multipart parts);

  const endpoint_config& config() const;

  // Closes the connection to `peer` at once, discarding what is still queued for it (a peer found dead:
  // closing must not wait `linger` for it). Later sends to it are reported as sends to a closed peer.
  void drop(peer_id peer);

  // Forgets the sequence numbers of run `run`'s streams (its end): per-run state does not outlive the run.
  // Returns once the I/O thread has done it; never call from a callback.
  void forget_run(std::uint64_t run);
  // Forgets what arrived from instance `from` of run `run` (it was replaced on another host and numbers
  // its streams from 0 again). Returns once the I/O thread has done it; never call from a callback.
  void forget_sender(std::uint64_t run, std::uint32_t from);

  // Adds client keys the bound curve server accepts from now on (e.g. the peers of a run). Thread-safe.
  void allow(const std::vector<std::string>& keys);
  // Takes back what allow() added (the peers of a run that ended): new handshakes with these keys are
  // refused again. The keys of endpoint_config::allowed_clients stay. Thread-safe.
  void disallow(const std::vector<std::string>& keys);

  // What the endpoint has done so far; any thread may read it (tests, benchmarks, logs).
  struct counters {
    std::uint64_t kept = 0;              // data envelopes sent on a DEALER and not yet acknowledged
    std::uint64_t acks_piggybacked = 0;  // acks that rode on a credit envelope
    std::uint64_t acks_separate = 0;     // separate Ack messages (no credit went back in time)
    std::uint64_t repeats_dropped = 0;   // resent envelopes that had arrived before
    std::uint64_t fenced = 0;            // credits held until the data sent before them was acknowledged
    std::uint64_t gated = 0;             // credits received that waited for the data they follow (credit_gate.hpp)
  };
  counters stats() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// The sender's half of the sequence rule: numbers each (run, from, to) stream from 0. Not thread-safe: one
// owner per stream (a stand-in actor owns the streams into its remote instance).
class stream_numbering {
 public:
  std::uint64_t next(const stream_key& k) { return next_[k]++; }

 private:
  std::unordered_map<stream_key, std::uint64_t, stream_key_hash> next_;
};

}  // namespace loom::transport
