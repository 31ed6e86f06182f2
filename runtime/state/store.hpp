// runtime/state/store.hpp: a run's state file, DIR/state.sqlite (docs/durability.md): SQLite in WAL mode,
// stamped with loom's application id and a state version, holding the run's meta and its last complete
// snapshots. A snapshot is written in one transaction, so a process killed while writing one leaves the
// previous one as it was; older ones are pruned in that same transaction, so the file stays proportional to
// the live state, not to the run's history. Every refusal is a state::error with one sentence naming the file.
// No CAF here: the runtime hands the store plain records (runtime/local/snapshot.hpp converts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loom/runtime/state/value_codec.hpp"
#include "loom/runtime/value.hpp"

struct sqlite3;

namespace loom::state {

inline constexpr std::uint32_t application_id = 0x4C4F4F4D;  // "LOOM", PRAGMA application_id
inline constexpr int state_version = 1;                      // PRAGMA user_version: the newest this loom reads
inline constexpr std::size_t default_keep = 2;               // unpinned complete snapshots kept
inline constexpr const char* state_file_name = "state.sqlite";
inline constexpr const char* lock_file_name = "lock";
// The test hook (tests/state): a process whose environment sets it to k kills itself with SIGKILL right after
// the k-th row it inserts into a snapshot (counted from the store's open), before the snapshot commits.
inline constexpr const char* crash_env = "LOOM_TEST_CRASH_IN_SNAPSHOT";

struct error : std::runtime_error {
  enum class kind {
    foreign,   // not a SQLite file, or another program's: "is not a loom state file"
    newer,     // a state version past state_version
    damaged,   // the integrity check, a checksum, a missing table or snapshot
    mismatch,  // another graph, kinds or build (first_difference)
    held,      // another live process holds the run's lock
    exists,    // create() over a run
    missing,   // no state file, no such snapshot
    io,        // anything else SQLite or the file system says
  };
  error(kind k, const std::string& what) : std::runtime_error(what), why(k) {}
  kind why;
};

enum class phase : std::uint8_t { not_started = 0, running = 1, finishing = 2, finished = 3 };
const char* phase_name(phase p);

// One node instance's part of a snapshot (its committed state; runtime/local/snapshot.hpp says what each holds).
struct part_record {
  std::uint32_t instance = 0;
  state::phase phase = phase::not_started;
  value checkpoint;
  value replay;
  value closed;
};

// Values in flight on one link: recorded at its consumer, or committed and unsent at its producer.
enum class side : std::uint8_t { consumer = 0, producer = 1 };
struct link_record {
  std::uint32_t link = 0;
  state::side side = side::consumer;
  bool eos = false;    // the link's end of stream comes after these values
  bool ended = false;  // consumer side: the link's stream had ended before the record (nothing follows)
  value_list values;
};

// A decision a node waits for.
struct pending_record {
  std::uint32_t instance = 0;
  std::uint64_t id = 0;
  std::string node;
  value shown;
  std::int64_t asked_unix_ms = 0;
  std::int64_t deadline_unix_ms = 0;  // 0: none
};

// A decision recorded for a pending one (`loom approve`): kept until a snapshot shows the decision ended,
// so a run killed after taking it and before its next snapshot takes it again on resume, once.
struct decision_record {
  // Given by the store (AUTOINCREMENT: never reused, even after the rows before it are deleted): the poller
  // reads the rows after the last it saw.
  std::int64_t row = 0;
  std::uint32_t instance = 0;
  std::uint64_t id = 0;
  std::string verdict;  // approve, reject, edit
  value edited;         // edit: the value that goes on
  std::string reason;
  std::string by;       // user@host
  std::int64_t at_unix_ms = 0;
};

struct snapshot_info {
  std::int64_t id = 0;  // given by the store, increasing, never reused
  std::uint64_t epoch = 0;
  std::int64_t taken_unix_ms = 0;
  std::string reason;    // tick, pause, end
  bool pinned = false;   // never pruned
  std::string progress;  // per node counters (JSON text), for `loom runs`
};

// A conversation of `loom serve --state` (docs/durability.md, "Threads"): the last committed checkpoints of
// the served graph's stateful nodes after the thread's latest request, as one value.
struct thread_record {
  std::string id;
  std::int64_t updated_unix_ms = 0;
  value state;
};

struct snapshot {
  snapshot_info info;  // write() ignores info.id and info.pinned
  std::vector<part_record> parts;
  std::vector<link_record> links;
  std::vector<pending_record> pending;
};

class run_lock;

// One open state file. A store is used by one thread at a time (the run's writer thread); other processes
// may read the same file meanwhile (WAL), each through its own store.
class store {
 public:
  enum class access { read_only, read_write };

  // Makes DIR (and its parents) and a new state file in it; refuses (error::exists) a DIR whose state file
  // holds anything.
  static store create(const std::filesystem::path& dir);
  // Opens DIR's state file after checking it: a SQLite file, loom's application id, a state version this loom
  // reads, SQLite's integrity check and loom's tables. Refuses with error::foreign, newer, damaged or missing.
  static store open(const std::filesystem::path& dir, access a = access::read_write);
  // Removes a run's state (the file, its WAL and lock); refuses a file that is not loom's or a run that is live.
  static void drop(const std::filesystem::path& dir);
  // Whether a live process holds DIR's lock.
  static bool held(const std::filesystem::path& dir);

  store(store&& o) noexcept;
  store& operator=(store&& o) noexcept;
  store(const store&) = delete;
  store& operator=(const store&) = delete;
  ~store();

  const std::filesystem::path& dir() const { return dir_; }
  const std::filesystem::path& file() const { return file_; }

  // Writes `s` as one transaction, then prunes to the last `keep` (>= 1) complete unpinned snapshots in the
  // same transaction; returns the new snapshot's id. A value that cannot be kept (encode_error, naming the
  // instance or link) writes nothing.
  std::int64_t write(const snapshot& s, std::size_t keep = default_keep);
  // The complete snapshots, oldest first (without their records).
  std::vector<snapshot_info> list() const;
  std::optional<std::int64_t> latest_id() const;
  // The latest complete snapshot; error::damaged when there is none.
  snapshot read_latest() const;
  // Snapshot `id`; error::missing when there is no such complete snapshot, error::damaged when a blob does
  // not decode (naming the snapshot, the instance or link, and the field).
  snapshot read(std::int64_t id) const;
  void pin(std::int64_t id, bool pinned);

  // Threads (`loom serve --state`): one row per conversation id, replaced as a whole by each request
  // (UPSERT, one transaction), so the file holds state, not history. read_thread: nullopt when there is no
  // such row; error::damaged naming the thread when its blob does not decode. write_thread: an
  // encode_error naming the thread writes nothing. expire_threads: deletes every row last updated before
  // `before_unix_ms`; returns how many.
  std::optional<thread_record> read_thread(std::string_view id) const;
  void write_thread(std::string_view id, const value& state, std::int64_t now_unix_ms);
  std::size_t expire_threads(std::int64_t before_unix_ms);
  std::size_t thread_count() const;
  // Records a decision; error::exists when that decision (instance, id) has one already, naming who gave it.
  // A snapshot written later that no longer holds the decision pending deletes the row (write()).
  void decide(const decision_record& d);
  // The decisions recorded after row `after`, oldest first.
  std::vector<decision_record> decisions(std::int64_t after = 0) const;

  std::optional<std::string> meta(std::string_view key) const;
  void set_meta(std::string_view key, std::string_view value);
  std::vector<std::pair<std::string, std::string>> all_meta() const;

  // Takes DIR/lock (flock, exclusive, not waiting) for as long as the returned lock lives and records this
  // process's pid and host in meta ("pid", "host"); error::held names the holder's.
  run_lock lock();

  // File sizes on disk: the database and its WAL (for tests and `loom runs`).
  std::uintmax_t bytes_on_disk() const;

 private:
  store(std::filesystem::path dir, sqlite3* db, access a);
  void crash_point();

  std::filesystem::path dir_, file_;
  sqlite3* db_ = nullptr;
  access access_ = access::read_write;
  long crash_after_ = 0;  // crash_env; 0: off
  long rows_ = 0;
};

// The liveness lock of a run's DIR; released when destroyed (or when the process dies).
class run_lock {
 public:
  run_lock() = default;
  run_lock(run_lock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  run_lock& operator=(run_lock&& o) noexcept;
  run_lock(const run_lock&) = delete;
  run_lock& operator=(const run_lock&) = delete;
  ~run_lock();
  bool owns() const { return fd_ >= 0; }

 private:
  friend class store;
  explicit run_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The first line where `stored` (what the state file holds) and `ours` differ, as a sentence:
// "WHAT differ at line 3: the state file has `...`, this loom has `...`"; nullopt when equal. `ours_name`
// names the second side (`loom runs --fork`: "the fork").
std::optional<std::string> first_difference(std::string_view stored, std::string_view ours, std::string_view what,
                                            std::string_view ours_name = "this loom");
// Throws error::mismatch ("FILE cannot be resumed by this loom: ...") when they differ.
void require_same(const std::filesystem::path& file, std::string_view stored, std::string_view ours,
                  std::string_view what);

}  // namespace loom::state
