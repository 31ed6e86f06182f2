// runtime/local/snapshot.hpp: a consistent snapshot of a running graph, and the part each node instance
// gives to it (docs/durability.md, "The snapshot protocol").
//
// The coordinator starts epoch n by sending snapshot_msg{n} to every live instance. An instance takes its
// part at the first of that message or a barrier_msg{n} on one of its in-links: it copies its committed
// state (the last checkpoint, the inputs to replay after it, the ports closed and to close, the committed
// outputs not yet sent), sends barrier_msg{n} on every out-link, and records each in-link from its
// consumption point until that link's barrier or end of stream (inbox::start_recording). Nothing waits:
// no link is blocked and no attempt is cut short (an open attempt is done again on resume, as after a
// restart). Per link the three pieces meet exactly: what the consumer had consumed is in its state, the
// values it recorded were sent before the producer's part, and what the producer had committed and not
// sent is in the producer's part.
//
// Values are shared (refcounted, immutable), so a part costs reference copies on the instance's own actor.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "loom/runtime/local/inbox.hpp"
#include "loom/runtime/local/outbox.hpp"
#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/value.hpp"

namespace loom::local {

struct instance_part {
  enum class phase : std::uint8_t {
    running,    // started (or not yet): made again from checkpoint and replay
    finishing,  // on_finish committed; its outputs still going
    finished,   // done (its end of stream reached every consumer): nothing to resume
  };
  // A decision the instance waits for (context::ask).
  struct pending_decision {
    std::uint64_t id = 0;
    value shown;
    std::int64_t asked_unix_ms = 0;
    std::int64_t deadline_unix_ms = 0;  // 0: none
  };
  // What a stateful node is given again after its checkpoint: an input, or a port's close.
  struct replayed {
    bool close = false;
    std::size_t port = 0;
    value v;
  };
  std::uint32_t instance = 0;
  phase state = phase::running;
  value checkpoint;                      // null: none taken
  std::vector<replayed> replay;          // inputs and closes since the checkpoint, in order
  std::vector<std::size_t> to_close;     // ports whose links have all ended, on_input_closed not committed
  bool pulled_all = false;               // a source that has pulled everything
  std::vector<inbox::record> inputs;     // per in-link
  std::vector<outbox::unsent> outputs;   // per out-link with committed values not yet sent
  std::vector<pending_decision> pending;  // its pending decisions, committed (asked again by the node on resume)
  // Nothing to do until a decision or a credit arrives: no open attempt, no call, no queued decision, input
  // queued only while held by decisions, a source that pulled all or waits for credit, no timer but a
  // decision's deadline. The coordinator calls a snapshot quiet when every part is idle and every value in
  // flight waits at a held consumer (run_options::detach_on_pause). A snapshot is consistent whatever it
  // shows, so a run stopped at one that was quiet too soon (a credit on its way) loses nothing: it does that
  // work after the resume.
  bool idle = false;
  bool held = false;  // it takes no input: it holds node::max_pending_decisions() decisions
  std::uint64_t take_ns = 0;             // the time its actor spent taking it (the only pause it makes)
};

struct snapshot {
  std::uint64_t epoch = 0;
  // By instance index (deployment numbering); null for an instance of another host.
  std::vector<std::shared_ptr<const instance_part>> parts;
  std::uint64_t took_ns = 0;  // from the coordinator's first snapshot_msg to the last part (no node waits)
  // Decisions pending in the parts, and whether the run waits for nothing else (every part idle, no value
  // recorded in flight): set by the coordinator when the snapshot is complete.
  std::size_t pending = 0;
  bool quiet = false;
};

// The part of an instance that has finished (its end of stream reached every consumer): nothing to resume.
std::shared_ptr<instance_part> finished_part(std::uint32_t instance);

// Each instance's out-links as consumer instances, in the order its outbox numbers them (port, edge, replica):
// what is_quiet needs to find where a part's unsent values wait.
std::vector<std::vector<std::uint32_t>> consumers_by_out_link(const deployment& d);

// Quiet: decisions pending, every unfinished part idle, and every value in flight waiting at a consumer that
// takes no input (held by its decisions). A run stopped at a quiet snapshot waits for people only
// (run_options::detach_on_pause; a cluster run's driver tests the snapshot it assembled the same way).
bool is_quiet(const snapshot& s, const std::vector<std::vector<std::uint32_t>>& consumers_of);

}  // namespace loom::local
