// runtime/transport/stand_in.hpp: a node instance that lives on another host, as local actors see it.
// On each host every remote instance a local actor talks to has one stand-in actor. Local actors send it
// their ordinary messages (batch, credit, eos, call, reply); it tags each {run, from, to, seq} and hands it
// to the endpoint. `from` is the sender's instance index, found by looking up current_sender() in a table
// shared read-only by all stand-ins of a run (one table per run, no per-sender stand-ins). Each stand-in owns
// the sequence numbers of the streams into its instance. On the far host a receiver delivers the message
// to the local actor of `to` with caf::send_as, as if sent by the stand-in of `from` there, so replies and
// credits route back the same way.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/transport/endpoint.hpp"

namespace loom::transport {

// The actor id of every local node actor of a run -> its global instance index. Built after the local
// actors are spawned and before any stand-in runs; never changed after.
using sender_table = std::unordered_map<caf::actor_id, std::uint32_t>;

struct stand_in_config {
  std::uint64_t run = 0;
  std::uint32_t instance = 0;  // the remote instance this actor stands in for (`to` of what it sends)
  transport::endpoint* endpoint = nullptr;  // outlives the actor
  peer_id peer = 0;                         // the endpoint's connection to the host of `instance`
  std::shared_ptr<const sender_table> senders;
  // Called (on a CAF worker thread) when a message cannot go: an unknown sender, a value the wire cannot
  // carry. The message is not sent; the caller should fail the run.
  std::function<void(const std::string&)> on_error;
  // `instance` may move (instance_plan::movable): the stand-in numbers the values sent to it on each
  // in-link (batch_msg::first) and keeps them until credited, to send them again to its replacement.
  std::shared_ptr<const local::deployment> plan;
  bool movable = false;
};

// The stand-in's behavior: spawn with system.spawn(stand_in, cfg).
caf::behavior stand_in(caf::event_based_actor* self, stand_in_config cfg);

// ---- a movable instance's stand-in, when the instance moves (docs/cluster.md "Losing a host") ----

// From the receiver: the instance credited `credits` on `producer`'s out-link `link` (the kept values
// it covers are let go).
struct credited_msg {
  std::uint32_t producer;
  local::link_id link;
  std::uint32_t credits;
};
// Its host was lost: from now on it lives on `peer` (or here, as `local`). The stand-in holds everything
// until resume_msg; each local consumer in `consumers` (its actor and in-link) is told its producer was
// replaced, and its credits to the old instance are dropped until it answers.
struct replaced_consumer {
  caf::actor actor;
  local::link_id in_link;   // the consumer's in-link from the instance
  local::link_id out_link;  // the instance's out-link to it (the consumer's credits name this one)
};
struct rewire_msg {
  peer_id peer = 0;
  caf::actor local;
  std::vector<replaced_consumer> consumers;
};
// Every host has rewired: what the old instance had not credited goes to the new one, then what waited.
struct resume_msg {};

// A movable instance's egress on its host: everything it sends to other hosts (batches, credits, end of
// stream, calls and their cancels; `to` in each message) goes through this one actor, in the instance's order, so the endpoint
// can hold each credit until the outputs sent before it are acknowledged (endpoint::send_fenced).
struct egress_config {
  std::uint64_t run = 0;
  std::uint32_t instance = 0;
  transport::endpoint* endpoint = nullptr;
  std::vector<peer_id> peer_of;  // instance -> the endpoint's connection to its host
  std::vector<char> remote;      // instance -> lives on another host
  std::function<void(const std::string&)> on_error;
  std::uint32_t epoch = 0;       // the instance's moves so far (envelope::epoch)
};
caf::behavior egress(caf::event_based_actor* self, egress_config cfg);

// What may travel on one (from, to) stream of a run, from the deployment that both hosts expanded.
struct stream_rules {
  std::unordered_map<local::link_id, std::int64_t> in_links;   // `to`'s in-links fed by `from` -> capacity
  std::unordered_map<local::link_id, std::int64_t> out_links;  // `to`'s out-links into `from` -> capacity
  bool calls = false;    // `to` is a tool that `from` may call
  bool replies = false;  // `from` is a tool that `to` calls
};

// The receive boundary's view of a run: every stream that exists, and which host key each instance's
// messages must come from. Hostile or confused bytes are refused here, before any actor sees them.
struct run_rules {
  std::unordered_map<std::uint64_t, stream_rules> streams;  // key: from << 32 | to
  // instance -> the z85 curve key of the host it lives on; empty (or an empty entry): not checked
  std::vector<std::string> instance_key;
  std::vector<std::string> instance_host;  // instance -> its host's name, for messages
  std::vector<char> movable;               // instance -> may move (its credits are told to its stand-in)
  std::vector<std::uint32_t> epoch;        // instance -> its moves so far; older envelopes from it are stale
  static std::uint64_t key(std::uint32_t from, std::uint32_t to) { return std::uint64_t{from} << 32 | to; }
};

// The receiving half for one run on one host: delivers each arriving envelope to the local actor of `to`
// as if sent by the stand-in of `from` on this host. Thread-safe (read-only after construction).
class receiver {
 public:
  // local[i]: the actor of instance i when it lives here; stand_ins[i]: the stand-in of instance i when it
  // lives elsewhere. Either may be shorter than the number of instances. With `rules`, every envelope is
  // checked against them (stream, link ids, credit counts and batch sizes within the link's capacity, call
  // and reply targets, the sender's key) before it is delivered.
  receiver(std::uint64_t run, std::vector<caf::actor> local, std::vector<caf::actor> stand_ins,
           std::shared_ptr<const run_rules> rules = {});
  // Delivers; or returns why not (another run, `to` not local here, no stand-in for `from`, a broken rule).
  // `sender_key`: the curve key the message was authenticated with (incoming::peer_key).
  std::optional<std::string> deliver(envelope&& e, const std::string& sender_key = {}) const;

  // Sent by an instance from before its latest move (a lost host that came back): to be dropped quietly.
  bool stale(const envelope& e) const;

  // The same receiver after `instance` moved (its `epoch`-th move) to host `host` (curve key `key`);
  // `local`: its actor, when it moved here.
  receiver moved(std::uint32_t instance, std::uint32_t epoch, const std::string& host, const std::string& key,
                 const caf::actor& local) const;

 private:
  std::optional<std::string> check(const envelope& e, const std::string& sender_key) const;
  std::uint64_t run_;
  std::vector<caf::actor> local_;
  std::vector<caf::actor> stand_ins_;
  std::shared_ptr<const run_rules> rules_;
};

}  // namespace loom::transport

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::transport::credited_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::transport::rewire_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::transport::resume_msg)
