// cli/state.hpp: durable runs from the command line (docs/durability.md): `loom run FILE --state DIR` keeps
// the run's snapshots in DIR/state.sqlite, `loom resume DIR` continues a run from its latest one, `loom runs
// DIR` shows what DIR holds. The glue between the runtime's snapshots (runtime/local/snapshot.hpp) and the
// state file's records (runtime/state/store.hpp), and the writer thread that keeps disk off the run's path.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/state/store.hpp"

namespace loom::cli {

// A run's links numbered once for the state file: link n is the consumer's in-link, counted over the
// instances in order (instance 0's in-links first). Both halves of a link (the consumer's record and the
// producer's unsent values) carry the same number.
struct link_numbering {
  explicit link_numbering(const local::deployment& d);
  std::vector<std::uint32_t> first_in;                      // instance -> its first in-link's number
  std::vector<std::vector<std::uint32_t>> out;              // instance -> out-link index -> number
  std::vector<std::pair<std::uint32_t, local::link_id>> consumer;  // number -> (instance, in-link index)
  std::vector<std::pair<std::uint32_t, local::link_id>> producer;  // number -> (instance, out-link index)
};

// The runtime's snapshot as the state file's records, and back. from_state checks every record against the
// deployment (instances, ports, links) and throws state::error (damaged) naming `file`, the snapshot and what.
state::snapshot to_state(const local::snapshot& s, const link_numbering& links, const local::deployment& d);
std::shared_ptr<const local::snapshot> from_state(const state::snapshot& s, const local::deployment& d,
                                                  const link_numbering& links, const std::filesystem::path& file);

// The state file's helpers that `loom run --state`, `loom resume`, `loom runs` and its admin share.
// The text of a file (ok false when it cannot be read).
std::string read_text(const std::filesystem::path& p, bool& ok);
// The run's lock. `loom runs` tells a live run from a dead one by taking the lock for an instant when it is
// free, so a refusal is tried again a few times (0.25 s in all) before it stands.
state::run_lock take_lock(state::store& st);
// A meta value a run needs: a state file without it is damaged (state::error naming the file and key).
std::string need_meta(const state::store& st, const char* key);
// A meta number, or `fallback` when it is missing or not a number.
long meta_number(const state::store& st, const char* key, long fallback);

// The description a resume compares: the expanded graph (every instance, link and capacity) and the kinds.
std::string describe_run(const local::deployment& d, const registry& kinds);

// One durable run in this process: the state file, its lock, and the writer thread. The coordinator hands
// each snapshot to offer() and never waits on disk: the writer holds one snapshot at most, and a newer one
// replaces one it has not started writing.
class durable_run {
 public:
  struct settings {
    std::chrono::milliseconds every{1000};
    std::size_t keep = state::default_keep;
    bool detach_on_pause = false;  // stop (exit 3) once the run waits for people only
  };
  // `loom run --state DIR`: a new state file in DIR (refused when DIR holds a run), its meta and lock.
  // nullptr with the error printed.
  static std::unique_ptr<durable_run> create(const std::filesystem::path& dir, const run_options& options,
                                             const graph::graph& g, const registry& kinds, settings s);
  // `loom resume DIR`: the opened store (checked by the caller), locked; `restore` may be null (no snapshot
  // was taken before the run stopped: it starts from the beginning).
  durable_run(state::store st, state::run_lock lock, std::shared_ptr<const local::deployment> plan, settings s);
  ~durable_run();
  durable_run(const durable_run&) = delete;
  durable_run& operator=(const durable_run&) = delete;

  const std::shared_ptr<const local::deployment>& plan() const { return plan_; }
  // Sets snapshot_every, on_snapshot, poll_decisions and detach_on_pause, and starts the writer (start()).
  void arm(local::run_options& ro);
  // The same for a cluster run's driver (driver_options has the same four fields): its snapshot interval
  // and sink, the decisions to route, whether to stop once it waits for people only.
  void start(std::chrono::milliseconds& every, std::function<void(std::shared_ptr<const local::snapshot>)>& on_snapshot,
             std::function<std::vector<local::routed_decision>()>& poll_decisions, bool& detach_on_pause);
  // The per-node counters the next snapshot's row carries (for `loom runs`).
  void progress(const local::run_report& r);
  // Stops the writer (the snapshot it holds is written first) and records the run's end in meta.
  void finish(const local::run_report& r);
  state::store& store() { return store_; }
  // The decisions pending at the last snapshot written (empty before the first).
  std::vector<state::pending_record> pending() const;

 private:
  void offer(std::shared_ptr<const local::snapshot> s);
  void write_loop();
  void poll_decisions();

  state::store store_;
  state::run_lock lock_;
  std::shared_ptr<const local::deployment> plan_;
  link_numbering links_;
  settings settings_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::shared_ptr<const local::snapshot> next_;
  std::string progress_;
  bool stop_ = false;
  std::size_t written_ = 0, replaced_ = 0, failed_ = 0, poll_failed_ = 0;
  // Decisions: the last row read, those read and not yet taken by the coordinator, and what the last
  // snapshot written holds pending (a paused run names them).
  std::int64_t last_decision_row_ = 0;
  std::vector<local::routed_decision> decided_;
  std::vector<state::pending_record> last_pending_;
  std::thread writer_;
};

// Records decision `d` (its instance, id, verdict, value, reason, by) in DIR's state file, as `loom approve`
// and the live view do: only for a decision pending at the latest snapshot, and not one given already.
// Returns an empty string when recorded, else one sentence saying why not.
std::string record_decision(const std::filesystem::path& dir, const state::decision_record& d);
// "user@host" of this process: who decides.
std::string who_decides();
// The pending decisions by node, for messages: "`review` (ids 0, 1), `legal` (id 0)"; with `counts`,
// "2 at `review` (ids 0, 1), 1 at `legal` (id 0)".
std::string pending_by_node(const std::vector<state::pending_record>& pending, bool counts = false);
// The decision recorded for pending decision `p` and not yet taken by a run, or nullptr.
const state::decision_record* recorded_for(const std::vector<state::decision_record>& recorded,
                                           const state::pending_record& p);

// Runs `g` in this process (the body of `loom run` and `loom resume`); `durable` (may be null) keeps its state.
// A cluster run (options.cluster) whose state is still to be made gets `make_durable` instead, called once
// its hosts and plan are known, so that a bad cluster file or a graph that does not fit leaves no state
// behind (null: it printed why, and the run does not start).
int run_here(const run_options& options, const graph::graph& g, const registry& kinds, durable_run* durable,
             std::shared_ptr<const local::snapshot> restore,
             const std::function<durable_run*()>& make_durable = {});

}  // namespace loom::cli
