// runtime/local/messages.hpp: what node actors and the coordinator say to each other inside a process.
// Data moves in batches; credits move back; end-of-stream follows the data on each link (CAF keeps the
// order of messages between two actors).
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/value.hpp"

namespace loom::local {

using link_id = std::uint32_t;  // a link is one edge between one producer and one consumer instance

struct batch_msg {
  link_id link;
  std::vector<value> values;
};
struct credit_msg {
  link_id link;
  std::uint32_t credits;
};
struct eos_msg {
  link_id link;
};
// Every actor's handle, sent once before start (actors are spawned before they can know each other).
struct wire_msg {
  std::vector<caf::actor> actors;
};
// A call to a tool and its reply, matched by the caller's id.
struct call_msg {
  std::uint64_t id;
  value request;
};
struct reply_msg {
  std::uint64_t id;
  bool ok;
  value reply;
  std::string error;
};
struct call_timeout_msg {
  std::uint64_t id;
};
struct done_msg {
  std::uint32_t instance;
  bool failed;
  std::string error;
};

using start_atom = caf::atom_constant<caf::atom("start")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using pump_atom = caf::atom_constant<caf::atom("pump")>;
using release_atom = caf::atom_constant<caf::atom("release")>;  // a tool: every caller has finished

}  // namespace loom::local

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::batch_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::credit_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::eos_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::wire_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::done_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::call_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::reply_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::call_timeout_msg)
