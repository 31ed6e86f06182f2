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

// The receiving half for one run on one host: delivers each arriving envelope to the local actor of `to`
// as if sent by the stand-in of `from` on this host. Thread-safe (read-only after construction).
class receiver {
 public:
  // local[i]: the actor of instance i when it lives here; stand_ins[i]: the stand-in of instance i when it
  // lives elsewhere. Either may be shorter than the number of instances.
  receiver(std::uint64_t run, std::vector<caf::actor> local, std::vector<caf::actor> stand_ins);
  // Delivers; or returns why not (another run, `to` not local here, no stand-in for `from`).
  std::optional<std::string> deliver(envelope&& e) const;

 private:
  std::uint64_t run_;
  std::vector<caf::actor> local_;
  std::vector<caf::actor> stand_ins_;
};

}  // namespace loom::transport
