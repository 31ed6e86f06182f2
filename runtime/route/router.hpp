// runtime/route/router.hpp: the model router's decisions, without sockets (docs/route.md). A router knows a
// fixed list of OpenAI-compatible replicas and, for each request, picks one by a policy:
//   - prefix: the replica expected to hold the longest prefix of the rendered prompt in its KV cache,
//     weighed against its load (score = uncached bytes + queued prompt bytes + in-flight requests, times
//     its recent time to first token relative to the fastest replica's);
//   - least-loaded: the lowest load by the same measure, ignoring prefixes;
//   - round-robin: the next replica in turn.
// It keeps its own prefix index of what it sent where (64-byte blocks of the prompt, hashed in a chain,
// bounded, evicted least recently used first): no help from the engines. Replicas that fail (requests or
// probes) `eject_after` times in a row are ejected and let back in by a probe that succeeds; a replica with
// `max_in_flight` requests takes no more (when all are full, pick() refuses: the front answers 429).
// metrics_text() says what it did and why (Prometheus text). Thread-safe: one mutex, held for microseconds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "loom/runtime/observe/metrics.hpp"

namespace loom::route {

enum class policy { prefix, least_loaded, round_robin };
// "prefix", "least-loaded", "round-robin"; nullopt for anything else.
std::optional<policy> parse_policy(std::string_view s);
const char* policy_name(policy p);

// What the router sent where, as a chain of block hashes: block i's hash covers the whole prompt up to the
// end of block i, so one hash names one prefix (a prefix tree whose nodes are found by hash). Each known
// prefix remembers the replicas it was sent to (at most 64 replicas). At most `max_blocks` prefixes are
// kept; past that the least recently used go first (a prefix is used whenever a prompt that contains it
// is inserted; a prompt's shorter prefixes count as used after its longer ones, so leaves go first).
class prefix_index {
 public:
  static constexpr std::size_t max_replicas = 64;
  prefix_index(std::size_t block_bytes, std::size_t max_blocks);

  // The chained hashes of the full blocks of `text` (a last partial block is not counted).
  std::vector<std::uint64_t> chain(std::string_view text) const;
  // For each of `replicas` replicas: how many leading blocks of `chain` were sent to it.
  std::vector<std::size_t> match(const std::vector<std::uint64_t>& chain, std::size_t replicas) const;
  // Records that `chain` was sent to `replica`.
  void insert(const std::vector<std::uint64_t>& chain, std::size_t replica);
  // Forgets everything sent to `replica` (it was ejected: its cache is presumed lost).
  void forget(std::size_t replica);

  std::size_t blocks() const { return map_.size(); }
  std::uint64_t evictions() const { return evictions_; }
  std::size_t block_bytes() const { return block_bytes_; }

 private:
  struct entry {
    std::uint64_t replicas = 0;  // bit r: sent to replica r
    std::list<std::uint64_t>::iterator lru;
  };
  std::size_t block_bytes_, max_blocks_;
  std::unordered_map<std::uint64_t, entry> map_;
  std::list<std::uint64_t> lru_;  // front: most recently used
  std::uint64_t evictions_ = 0;
};

using clock = std::chrono::steady_clock;

struct router_options {
  policy how = policy::prefix;
  std::size_t block_bytes = 64;
  std::size_t max_blocks = std::size_t{1} << 18;  // 16 MiB of prompt text remembered, about 30 MiB of memory
  std::size_t max_in_flight = 32;                 // per replica; a full replica is skipped
  int eject_after = 3;                            // consecutive failures (requests or probes) that eject
  // The load of one request in flight, in bytes of prefill: a request that decodes costs its replica time
  // even when it has no prompt left to read.
  std::size_t request_bytes = 1024;
  double ttft_alpha = 0.3;                              // weight of a new time-to-first-token sample
  std::chrono::milliseconds ttft_window{30'000};        // an older estimate is forgotten (a slow replica is tried again)
  std::function<clock::time_point()> now = [] { return clock::now(); };  // tests set the time
};

// Why a replica was chosen (loom_route_decisions_total{reason}).
enum class reason {
  prefix_hit,         // prefix: the chosen replica holds the longest known prefix
  prefix_overloaded,  // prefix: another replica holds a longer prefix, but its load (or a full queue) lost
  no_prefix,          // prefix: no replica holds any block of the prompt; chosen by load
  least_loaded,       // least-loaded
  round_robin,        // round-robin
};
const char* reason_name(reason r);

// Why no replica was chosen.
enum class refusal {
  all_full,      // every healthy replica has max_in_flight requests: 429, Retry-After
  none_healthy,  // every replica is ejected (or was already tried for this request): 503
};

class router;

// One request on one replica, from pick() until finish() (or destruction: `abandoned`).
class lease {
 public:
  enum class outcome {
    ok,         // answered
    failed,     // the replica failed (connection, 5xx, a stream cut short): counts toward ejection
    busy,       // the replica said 429: not a failure, try another
    abandoned,  // the client left, or the request was bad (4xx): not the replica's fault
  };
  lease() = default;
  lease(lease&& o) noexcept;
  lease& operator=(lease&& o) noexcept;
  ~lease();
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;

  std::size_t replica() const { return replica_; }
  reason why() const { return why_; }
  std::size_t cached_bytes() const { return cached_; }  // expected cached prefix on the chosen replica
  explicit operator bool() const { return r_ != nullptr; }

  // The first token arrived after `seconds` (a whole answer: the answer): the replica's TTFT estimate.
  void first_token(double seconds);
  void finish(outcome o);

 private:
  friend class router;
  router* r_ = nullptr;
  std::size_t replica_ = 0;
  reason why_ = reason::round_robin;
  std::size_t cached_ = 0;
  std::size_t queued_ = 0;  // prompt bytes counted in the replica's queue until the first token
};

struct replica_view {
  std::string url;
  bool healthy = true;
  std::size_t in_flight = 0;
  std::size_t queued_bytes = 0;
  std::optional<double> ttft;  // recent estimate (seconds), if any within ttft_window
  std::uint64_t requests = 0;  // picks
};

class router {
 public:
  router(std::vector<std::string> replicas, router_options options = {});
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  // Chooses a replica for `prompt` (the rendered conversation), skipping those in `exclude` (already
  // tried for this request); the lease counts it in flight until it is finished.
  std::variant<lease, refusal> pick(std::string_view prompt, const std::vector<std::size_t>& exclude = {});

  // A health probe's result: a success lets an ejected replica back in; failures count like a request's.
  void probed(std::size_t replica, bool ok);
  // A retry of a request on another replica (loom_route_retries_total{when}): before its first token,
  // or a stream continued after its replica died mid-answer.
  void count_retry(bool mid_stream);
  // A request the front refused (loom_route_refusals_total{reason}).
  void count_refusal(refusal r);

  std::size_t size() const;
  replica_view view(std::size_t replica) const;
  const router_options& options() const { return o_; }
  // Seconds a refused client should wait: the fastest recent TTFT, rounded up, at least 1.
  int retry_after_seconds() const;

  // The router's metrics, families loom_route_* (sorted by name), as a registry collector appends them.
  std::vector<observe::family> metrics_families() const;
  // The same in the Prometheus text format (0.0.4).
  std::string metrics_text() const;

 private:
  friend class lease;
  void first_token(lease& l, double seconds);
  void finish(lease& l, lease::outcome o);
  struct replica;
  std::optional<double> ttft_of(const replica& r, clock::time_point now) const;
  void fail(std::size_t i);

  router_options o_;
  mutable std::mutex m_;
  std::vector<std::unique_ptr<replica>> replicas_;
  prefix_index index_;
  std::size_t cursor_ = 0;  // round-robin and tie-breaking
  std::uint64_t decisions_[5] = {};
  std::uint64_t refusals_[2] = {};
  std::uint64_t retries_[2] = {};  // before the first token, mid-stream
};

}  // namespace loom::route
