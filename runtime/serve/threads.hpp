// runtime/serve/threads.hpp: conversations of `loom serve --state DIR` (docs/durability.md, "Threads").
// A request that names a thread (the `X-Loom-Thread` header, else the request's `user` field) runs with the
// memory its thread's earlier requests left: the last committed checkpoints of the graph's stateful nodes
// whose kind keeps thread state (kind_spec::thread_state: agent.llm with `memory: N`), kept as one row of
// the state file's `threads` table. Before the run the row is read and each kept node starts from its
// checkpoint (a snapshot of checkpoint-only parts, run_options::restore); after a run that succeeded each
// kept node's last checkpoint (run_options::on_last_checkpoint) replaces the row (one UPSERT). The requests
// of one thread run one after the other (a gate per id); other threads run concurrently. A row not updated
// for `idle` is deleted by a sweeper thread, and read as absent before then.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/state/store.hpp"
#include "loom/runtime/value.hpp"

namespace loom::serve {

class thread_memory {
 public:
  // Opens DIR's state file (making DIR and the file when there is none) and takes its lock, so one process
  // serves a DIR's threads. `plan` is any slot's deployment (all number their instances alike). Throws
  // state::error (the file is not loom's, is newer, is damaged, or a live process holds DIR).
  thread_memory(const std::filesystem::path& dir, std::chrono::milliseconds idle, const local::deployment& plan);
  ~thread_memory();
  thread_memory(const thread_memory&) = delete;
  thread_memory& operator=(const thread_memory&) = delete;

  // The instances a thread keeps (their keys, "NODE#INSTANCE"); empty: the graph keeps nothing.
  std::vector<std::string> kept() const;
  const std::filesystem::path& file() const;
  // Deletes the rows idle past `idle` now; returns how many (the sweeper calls it periodically).
  std::size_t sweep();

 private:
  struct gate;  // one per thread with a request in flight: its requests run one at a time

 public:
  // One request's turn on a thread: holds the thread's gate from begin() until destroyed.
  class turn {
   public:
    turn(turn&&) noexcept;
    turn& operator=(turn&&) = delete;
    ~turn();
    // The run's restore: a checkpoint-only part for each kept instance the thread has a checkpoint for;
    // null when it has none (a new or expired thread).
    std::shared_ptr<const local::snapshot> restore() const { return restore_; }
    // run_options::on_last_checkpoint (any thread).
    void collect(std::uint32_t instance, const value& checkpoint);
    // After a run that succeeded: the collected checkpoints become the thread's row. Throws state::error
    // or state::encode_error.
    void save();

   private:
    friend class thread_memory;
    turn(thread_memory& m, std::string id);
    thread_memory* m_;
    std::string id_;
    std::shared_ptr<gate> gate_;  // the thread's gate, locked by this turn (null once moved from)
    std::shared_ptr<const local::snapshot> restore_;
    std::mutex collected_m_;
    std::map<std::string, value> collected_;  // key -> the instance's last checkpoint
  };
  // Waits while another request of thread `id` runs, then reads its row. Throws state::error.
  turn begin(const std::string& id);


 private:
  struct gate {
    std::mutex m;
    std::size_t users = 0;
  };
  struct kept_instance {
    std::uint32_t index;
    std::string key;
    std::vector<std::size_t> unfed;  // input ports no link feeds (closed from the start)
  };
  static std::int64_t now_ms();
  std::shared_ptr<gate> enter(const std::string& id);
  void leave(const std::string& id, const std::shared_ptr<gate>& g);

  std::chrono::milliseconds idle_;
  std::size_t instances_ = 0;
  std::vector<kept_instance> kept_;
  std::mutex store_m_;  // the store is used by one thread at a time
  state::store store_;
  state::run_lock lock_;
  std::mutex gates_m_;
  std::unordered_map<std::string, std::shared_ptr<gate>> gates_;
  std::mutex sweep_m_;
  std::condition_variable_any sweep_cv_;
  std::jthread sweeper_;  // last: stopped and joined first
};

}  // namespace loom::serve
