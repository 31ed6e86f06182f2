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

#include "runtime/transport/endpoint.hpp"

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
};

// The stand-in's behavior: spawn with system.spawn(stand_in, cfg).
caf::behavior stand_in(caf::event_based_actor* self, stand_in_config cfg);

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

 private:
  std::optional<std::string> check(const envelope& e, const std::string& sender_key) const;
  std::uint64_t run_;
  std::vector<caf::actor> local_;
  std::vector<caf::actor> stand_ins_;
  std::shared_ptr<const run_rules> rules_;
};

}  // namespace loom::transport
