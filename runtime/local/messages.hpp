// runtime/local/messages.hpp: what node actors and the coordinator say to each other inside a process.
// Data moves in batches; credits move back; end-of-stream follows the data on each link (CAF keeps the
// order of messages between two actors).
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/local/plan.hpp"
#include "runtime/value.hpp"

namespace loom::local {

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
// A call to a tool and its reply, matched by the caller's id.
struct call_msg {
  std::uint64_t id;
  value request;
  std::uint64_t trace_parent = 0;  // a traced run: the caller's call span (carried across hosts in Call.traceParent)
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
};
struct call_timeout_msg {
  std::uint64_t id;
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

}  // namespace loom::local

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::batch_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::credit_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::eos_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::done_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::call_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::reply_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::cancel_call_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(loom::local::call_timeout_msg)
