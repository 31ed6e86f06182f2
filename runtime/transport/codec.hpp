// runtime/transport/codec.hpp: loom values and in-process messages <-> ZeroMQ multipart messages in the one
// wire format (runtime/transport/loom.capnp; framing in docs/wire.md). Encoding a large tensor or bytes value
// copies nothing: its payload becomes a zmq part that keeps the value's storage alive. Decoding never trusts
// the bytes: any malformed input gives a decode error naming what was wrong, and a received tensor's data
// is the received zmq buffer itself (zmq_storage). A value is written and read by the one writer and reader
// that the state file shares (runtime/wire/value_capnp.hpp), with the limits of runtime/wire/limits.hpp.
#pragma once

#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "loom/runtime/local/messages.hpp"
#include "loom/runtime/tensor.hpp"
#include "loom/runtime/value.hpp"
#include "loom/runtime/wire/limits.hpp"

namespace loom::transport {

// One ZeroMQ multipart message: [header, payload parts...].
using multipart = std::vector<zmq::message_t>;

// ---- data: one in-process message between two node instances of a run ----

using body = std::variant<local::batch_msg, local::credit_msg, local::eos_msg, local::call_msg, local::reply_msg,
                          local::cancel_call_msg, local::barrier_msg>;

// Names one ordered stream of envelopes: everything `from` says to `to` in one run.
struct stream_key {
  std::uint64_t run = 0;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  friend bool operator==(const stream_key&, const stream_key&) = default;
};
struct stream_key_hash {
  std::size_t operator()(const stream_key& k) const noexcept {
    return std::hash<std::uint64_t>{}(k.run * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{k.from} << 32 | k.to));
  }
};
std::string to_string(const stream_key& k);  // "run 7 stream 3->12"

// A data stream {run, from, to} of a credit's sender, arrived below `next` (envelope::after).
struct follows {
  std::uint32_t to = 0;
  std::uint64_t next = 0;
  friend bool operator==(const follows&, const follows&) = default;
};
// The most data streams one credit may follow (one per instance its sender feeds on the receiver's host); a
// credit naming more is refused when decoded.
inline constexpr std::size_t max_follows = 65536;

struct envelope {
  std::uint64_t run = 0;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::uint64_t seq = 0;  // per (run, from, to), from 0; the sender numbers, the receiver checks
  transport::body body;
  // Credit envelopes only: an acknowledgement of the reverse stream (to -> from) riding on the credit: every
  // seq below it has arrived; 0: none. The endpoint fills it in and consumes it (docs/wire.md).
  std::uint64_t ack = 0;
  std::uint32_t epoch = 0;  // how many times `from` has moved host (docs/cluster.md); 0 for most
  // Credit envelopes of a movable instance only: the data streams {run, from, to} of the same sender this
  // credit follows; the receiving endpoint delivers it once each arrived below `next` (credit_gate.hpp).
  std::vector<follows> after;
  // Its sender's credits wait for this envelope's acknowledgement: the receiver acks it at once.
  bool ack_now = false;
  // Batch envelopes only, when sending: more values of the same batch, after the body's own, in order
  // (batches a stand-in or egress joined: encoded as one batch, never copied into one vector first). A
  // decoded envelope has none: the receiver gets one batch of all of them.
  std::vector<std::vector<value>> more;
  stream_key stream() const { return {run, from, to}; }
};

// ---- control: driver <-> worker ----

namespace control {
struct host {
  std::string name;
  std::string data_address;
  std::string public_key;  // z85 CurveZMQ key of its worker; empty without curve
  friend bool operator==(const host&, const host&) = default;
};
struct plan {
  std::vector<host> hosts;
  std::vector<std::uint32_t> instance_host;  // instance index -> index into hosts (checked on decode)
  std::vector<std::int32_t> instance_device;  // instance index -> GPU on its host, -1: CPU; empty: not planned
  friend bool operator==(const plan&, const plan&) = default;
};
struct counters {
  std::uint64_t in = 0, out = 0, busy_ns = 0, queue_hwm = 0, restarts = 0, dropped = 0;
  friend bool operator==(const counters&, const counters&) = default;
};
// A snapshot of a cluster run (docs/durability.md, "Cluster runs"): the driver asks every worker for epoch
// `epoch`; each worker sends one part per instance of its own (runtime/local/part_value.hpp: the part as a
// value), and the driver keeps the snapshot once it holds every instance's part.
struct snapshot {
  std::uint64_t epoch = 0;
  friend bool operator==(const snapshot&, const snapshot&) = default;
};
struct snapshot_part {
  std::uint64_t epoch = 0;
  std::uint32_t instance = 0;
  loom::value part;
};
// A person's decision for pending decision `id` of instance `instance` (driver -> the instance's worker),
// and a worker's word that an instance asked for one (worker -> driver: it takes a snapshot soon).
struct decide {
  std::uint32_t instance = 0;
  std::uint64_t id = 0;
  loom::decision d;
};
struct asked {};
struct hello { std::string worker; };
struct deploy {
  std::string graph_yaml;
  control::plan plan;
  std::string expanded_graph;  // the driver's expansion (cluster::describe_deployment); a worker compares its own
  std::string kinds;           // the driver's kinds (cluster::describe_kinds); likewise
  std::string trace;           // a traced run: the driver's run span as a traceparent; empty: not traced
  // A link whose producer and consumer are on two hosts gets at least this capacity (its window: values
  // in flight; docs/cluster.md, "Windows across hosts"). 0: every link keeps its edge's capacity.
  std::uint32_t link_window = 0;
  // A resumed run: the snapshot's epoch and the parts of this worker's instances (each snapshot_part's
  // epoch is restore_epoch). Empty: a new run.
  std::uint64_t restore_epoch = 0;
  std::vector<snapshot_part> restore;
};
struct start {};
struct cancel { std::string reason; };
struct done {
  std::uint32_t instance = 0;
  bool failed = false;
  std::string error;
  control::counters counters;
  bool cancelled = false;  // ended by a cancel, not by finishing (never reported as a success)
};
struct release {};
struct heartbeat {
  std::uint64_t seq = 0;
  std::int64_t time_ns = 0;
  std::string samples;  // "?": the driver asks for metrics; in a worker's echo: its samples (text format)
  std::int64_t echo_unix_ns = 0;  // a worker's echo: its wall clock when it echoed (0 from the driver)
};
// A worker's spans of a traced run (observe::to_json(host_spans)), sent once its part has ended.
struct spans { std::string json; };
struct run_ended {
  bool ok = true;
  std::string error;
};
struct refused { std::string reason; };
// Endpoint to endpoint (handled inside the endpoint, never passed to on_message): per stream, every seq
// below `next` has arrived.
struct stream_ack {
  stream_key stream;
  std::uint64_t next = 0;
};
struct ack { std::vector<stream_ack> streams; };
// A worker's counts so far (every progress tick; the driver's live view).
struct instance_progress {
  std::uint32_t instance = 0;
  control::counters counters;
  std::uint64_t queued = 0;
  friend bool operator==(const instance_progress&, const instance_progress&) = default;
};
struct edge_progress {
  std::string from, from_node, to, label;
  std::uint64_t blocked_ns = 0;
  bool blocked = false;
  friend bool operator==(const edge_progress&, const edge_progress&) = default;
};
struct progress {
  std::vector<instance_progress> instances;
  std::vector<edge_progress> edges;
};
// Instance `instance` of a lost host moves to host `host` (an index into the plan's hosts): every surviving
// host of the run rewires to it, and `host` spawns it into its running slice. Each worker echoes the
// message once it has done its part.
struct adopt {
  std::uint32_t instance = 0;
  std::uint32_t host = 0;
  std::uint32_t epoch = 0;  // the instance's moves so far, this one included
  friend bool operator==(const adopt&, const adopt&) = default;
};
// After every echo: the moved instance's producers resend what it had not credited, and it runs.
struct resume {
  std::uint32_t instance = 0;
  friend bool operator==(const resume&, const resume&) = default;
};
using body = std::variant<hello, deploy, start, cancel, done, release, heartbeat, run_ended, refused, ack, progress, spans,
                          adopt, resume, snapshot, snapshot_part, decide, asked>;
}  // namespace control

struct control_msg {
  std::uint64_t run = 0;  // 0: no run meant (hello before deploy, heartbeat)
  control::body body;
};

using message = std::variant<envelope, control_msg>;

// ---- encoding ----

struct encode_options {
  // Bytes and tensor data of at least this many bytes travel as their own zmq part (no copy); smaller ones
  // are copied into the header, where many small values in one batch cost one zmq part in all.
  std::size_t inline_limit = 4096;
};

// Thrown by encode for a value the wire cannot carry (a tensor on a GPU, nesting deeper than max_depth).
struct encode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr int max_depth = wire::max_depth;  // nesting of lists and maps in one value, checked both ways

multipart encode(const envelope& e, const encode_options& opts = {});
multipart encode(const control_msg& c, const encode_options& opts = {});

// ---- decoding ----

struct decode_limits {
  std::size_t max_header_bytes = std::size_t{256} << 20;  // one header part
  std::uint64_t traversal_words = 0;  // capnp traversal limit; 0: twice the header's size in words
  int nesting = 2 * max_depth + 8;    // capnp pointer nesting (a value level is two pointers deep)
};

// Either a message or a one-line error saying what was wrong with the bytes.
struct decoded {
  std::optional<transport::message> msg;
  std::string error;
  explicit operator bool() const { return msg.has_value(); }
};

// Takes the parts (a tensor received out of line keeps its part alive as its storage).
decoded decode(multipart parts, const decode_limits& limits = {});

// A received zmq part that a tensor's data points into (no copy).
class zmq_storage final : public storage {
 public:
  explicit zmq_storage(zmq::message_t msg) : msg_(std::move(msg)) {}
  const std::byte* data() const override { return static_cast<const std::byte*>(msg_.data()); }
  std::size_t size() const override { return msg_.size(); }

 private:
  zmq::message_t msg_;
};

}  // namespace loom::transport
