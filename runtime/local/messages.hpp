// runtime/local/messages.hpp: what node actors and the coordinator say to each other inside a process.
// Data moves in batches; credits move back; end-of-stream follows the data on each link (CAF keeps the
// order of messages between two actors).
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loom/runtime/local/lineage.hpp"
#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/node.hpp"
#include "loom/runtime/value.hpp"

namespace loom::local {

// lineage, lineage_tags (a movable instance's outputs, lineage.hpp).

// `to` (batch, credit, eos): the instance at the other end, read only by a movable instance's egress
// (runtime/transport/stand_in.hpp), which sends everything that instance says to other hosts, in order.
struct batch_msg {
  link_id link;
  std::vector<value> values;
  std::uint64_t first = no_index;  // the first value's index on its link (set for a movable consumer)
  lineage_tags tags;               // one per value, from a movable producer; else empty
  std::uint32_t to = 0;
};
struct credit_msg {
  link_id link;
  std::uint32_t credits;
  std::uint32_t to = 0;
};
struct eos_msg {
  link_id link;
  std::uint32_t to = 0;
};
// To a consumer: the producer of in-link `link` was replaced on another host (its host was lost). What the
// consumer still holds from the old one no longer counts against the link, and a repeated end of stream
// is dropped.
struct producer_replaced_msg {
  link_id link;
};
// The consumer's answer (to whoever told it): `link` is the producer's out-link (the in-link's `remote`);
// the consumer's credits sent after this one are for the new producer.
struct replaced_ack_msg {
  link_id link;
};
// To the coordinator of a distributed run's slice: spawn instance `instance` here, into the running slice.
struct adopt_msg {
  std::uint32_t instance;
};
// To the coordinator: run `fn` on the slice's thread (a worker changes its run's wiring there).
struct on_slice_msg {
  std::function<void()> fn;
};
// A call to a tool and its reply, matched by the caller's id.
struct call_msg {
  std::uint64_t id;
  value request;
  std::uint64_t trace_parent = 0;  // a traced run: the caller's call span (carried across hosts in Call.traceParent)
  std::uint32_t to = 0;            // the tool instance (read by a movable caller's egress)
};
struct reply_msg {
  std::uint64_t id;
  bool ok;
  value reply;
  std::string error;
};
// The caller gave up on call `id` (timeout, restart, stop): a tool that has not started it never runs it.
struct cancel_call_msg {
  std::uint64_t id;
  std::uint32_t to = 0;  // the tool instance (read by a movable caller's egress)
};
struct call_timeout_msg {
  std::uint64_t id;
};

// Snapshots (snapshot.hpp). To every live instance: take your part of epoch `epoch` (if a barrier has not
// made you take it already).
struct snapshot_msg {
  std::uint64_t epoch;
};
// From a producer that took its part, on each out-link after every batch it sent before (CAF keeps the
// order between two actors): the consumer records this in-link up to here.
struct barrier_msg {
  link_id link;  // the consumer's in-link
  std::uint64_t epoch;
  std::uint32_t to = 0;  // the consumer instance (an egress routes by it, as eos_msg)
};
struct instance_part;
// To the coordinator: an instance's part, complete (every in-link's recording ended).
struct part_msg {
  std::uint64_t epoch;
  std::shared_ptr<instance_part> part;
};

// Decisions (node.hpp: context::ask). To an instance, from the coordinator: someone decided about its
// pending decision `id`.
struct decision_msg {
  std::uint64_t id;
  decision d;
};
// To the coordinator: instance `instance` committed an attempt that asked for a decision or took one (the
// run pauses or goes on there; a snapshot is taken at once).
struct asked_msg {
  std::uint32_t instance;
};

// How an instance ended. `cancelled`: stopped by the run (SIGINT, another node's failure, a lost host)
// before its input ended; never counted as a success.
enum class instance_end : std::uint8_t { finished, failed, cancelled };
const char* to_string(instance_end e);

struct done_msg {
  std::uint32_t instance;
  instance_end end;
  std::string error;
};

using start_atom = caf::atom_constant<caf::atom("start")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using pump_atom = caf::atom_constant<caf::atom("pump")>;
using release_atom = caf::atom_constant<caf::atom("release")>;  // a tool: every caller has finished
// To self, with the wake-up's number: a timer asked for with context::wake_after is due.
using timer_atom = caf::atom_constant<caf::atom("timer")>;

}  // namespace loom::local

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::batch_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::credit_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::eos_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::producer_replaced_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::replaced_ack_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::adopt_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::on_slice_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::done_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::snapshot_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::barrier_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::part_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::decision_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::asked_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::call_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::reply_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::cancel_call_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::call_timeout_msg)
