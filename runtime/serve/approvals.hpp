// runtime/serve/approvals.hpp: decisions over `loom serve`'s HTTP API (docs/serve.md, "Approvals";
// docs/durability.md, "People in the loop"). A served graph with human.approve, or an agent.llm with
// approve_tools, pauses a request while a node waits for a person. Each such request's run has a board: the
// decisions pending in the run's latest snapshot (an ask makes the coordinator take one at once:
// run_options::on_snapshot), the decisions given over HTTP and not yet handed to the run
// (run_options::poll_decisions, each once), and the stream comments owed. The server keeps the boards of its
// running requests by thread (the request's thread id, or the id the server gave a request without one), in
// memory only: a request's decisions live as long as its run.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "loom/runtime/http/decision_body.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/value.hpp"

namespace loom::serve {

// A decision a request's run waits for.
struct pending_approval {
  std::string thread;
  std::string node;  // the instance: `review`, `review[1]`
  std::uint32_t instance = 0;
  std::uint64_t id = 0;
  value shown;
  std::int64_t asked_unix_ms = 0;
  std::int64_t deadline_unix_ms = 0;  // 0: none
};

// What a decision over HTTP came to: 200 (taken), 404 (the thread has nothing pending) or 409 (not pending,
// or given already), with one sentence.
struct approval_answer {
  int status = 200;
  std::string message;
};

// One request's run.
class approval_board {
 public:
  approval_board(std::string thread, std::shared_ptr<const local::deployment> plan);
  const std::string& thread() const { return thread_; }

  // run_options::on_snapshot: the snapshot's pending decisions replace the board's (a decision given here
  // stays given: it is not listed, and giving it again is refused, for as long as the run runs).
  void update(const local::snapshot& s);
  // run_options::poll_decisions: the decisions given since the last call, each once.
  std::vector<local::routed_decision> take();
  // The run ended: nothing is pending any more.
  void clear();

  // Pending and not given yet, in the order asked.
  std::vector<pending_approval> pending() const;
  bool waiting() const;
  // The pending decision (not given) asked longest ago: the request's wait for people began then.
  std::optional<pending_approval> oldest() const;

  // A decision for pending decision `id` of `d.node` (or `d.instance`). `by` says who ("ADDR (loom serve)").
  // 409 when it is not pending here or was given already; `taken` is set when it is taken.
  approval_answer decide(const http::decision_body& d, const std::string& by, bool& taken);

  // A stream's comment line to send now, if any: each newly pending decision once (`: waiting for approval:
  // node N id I`), and the oldest again after `every` without one.
  std::optional<std::string> comment(std::chrono::steady_clock::time_point now,
                                     std::chrono::milliseconds every);

  // The request waited past --approval-timeout (its run was stopped for that).
  std::optional<std::string> timed_out() const;
  void set_timed_out(std::string why);

 private:
  struct given {
    std::uint32_t instance;
    std::uint64_t id;
    std::string node, verdict, by;
  };
  std::string thread_;
  std::shared_ptr<const local::deployment> plan_;
  mutable std::mutex m_;
  std::vector<pending_approval> pending_;       // at the latest snapshot
  std::vector<given> given_;                    // given here (a run does not ask the same id again)
  std::vector<local::routed_decision> queued_;  // given, not yet taken by the run
  std::set<std::pair<std::uint32_t, std::uint64_t>> announced_;  // stream comments sent
  std::chrono::steady_clock::time_point last_comment_{};
  std::optional<std::string> timed_out_;
  friend class approval_boards;
};

// The boards of the server's running requests, by thread.
class approval_boards {
 public:
  // A board for a request of `thread`, listed until close().
  std::shared_ptr<approval_board> open(const std::string& thread,
                                       std::shared_ptr<const local::deployment> plan);
  void close(const std::shared_ptr<approval_board>& board);

  // The thread's pending decisions (empty: none, or no request of it runs); all threads' when `thread` is
  // empty.
  std::vector<pending_approval> pending(const std::string& thread) const;
  // A decision given over HTTP for a request of `thread`.
  approval_answer decide(const std::string& thread, const http::decision_body& d, const std::string& by);

  // Decisions given and remembered after their run ended, so that giving one again says so (409) instead of
  // not knowing the thread (404). The newest ones, at most this many.
  static constexpr std::size_t remembered = 1024;

 private:
  struct given_record {
    std::string thread, node;
    std::uint64_t id;
    std::string verdict, by;
  };
  mutable std::mutex m_;
  std::multimap<std::string, std::shared_ptr<approval_board>> boards_;
  std::deque<given_record> recent_;
};

// The list as GET /v1/threads/{thread}/approvals answers it.
nlohmann::ordered_json approvals_json(const std::vector<pending_approval>& list);

}  // namespace loom::serve
