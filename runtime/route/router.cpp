// runtime/route/router.cpp: the prefix index, the policies, health and the router's metrics.
#include "loom/runtime/route/router.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "loom/runtime/observe/metrics.hpp"

namespace loom::route {

std::optional<policy> parse_policy(std::string_view s) {
  if (s == "prefix") return policy::prefix;
  if (s == "least-loaded") return policy::least_loaded;
  if (s == "round-robin") return policy::round_robin;
  return std::nullopt;
}

const char* policy_name(policy p) {
  switch (p) {
    case policy::prefix: return "prefix";
    case policy::least_loaded: return "least-loaded";
    case policy::round_robin: return "round-robin";
  }
  return "?";
}

const char* reason_name(reason r) {
  switch (r) {
    case reason::prefix_hit: return "prefix_hit";
    case reason::prefix_overloaded: return "prefix_overloaded";
    case reason::no_prefix: return "no_prefix";
    case reason::least_loaded: return "least_loaded";
    case reason::round_robin: return "round_robin";
  }
  return "?";
}

// ---- prefix_index ----

prefix_index::prefix_index(std::size_t block_bytes, std::size_t max_blocks)
    : block_bytes_(block_bytes), max_blocks_(max_blocks) {
  if (block_bytes_ == 0) throw std::invalid_argument("prefix index: the block size must be at least 1 byte");
  if (max_blocks_ == 0) throw std::invalid_argument("prefix index: it must hold at least one block");
}

namespace {
// FNV-1a over the block, seeded with the previous block's hash, then a splitmix64 finish (FNV's low bits
// alone mix poorly).
std::uint64_t hash_block(std::uint64_t seed, std::string_view block) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : block) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}
}  // namespace

std::vector<std::uint64_t> prefix_index::chain(std::string_view text) const {
  std::vector<std::uint64_t> out;
  out.reserve(text.size() / block_bytes_);
  std::uint64_t h = 0;
  for (std::size_t at = 0; at + block_bytes_ <= text.size(); at += block_bytes_) {
    h = hash_block(h, text.substr(at, block_bytes_));
    out.push_back(h);
  }
  return out;
}

std::vector<std::size_t> prefix_index::match(const std::vector<std::uint64_t>& chain, std::size_t replicas) const {
  std::vector<std::size_t> matched(replicas, 0);
  std::uint64_t alive = replicas >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << replicas) - 1;
  for (std::size_t i = 0; i < chain.size() && alive != 0; ++i) {
    auto it = map_.find(chain[i]);
    if (it == map_.end()) break;
    alive &= it->second.replicas;
    for (std::size_t r = 0; r < replicas; ++r)
      if (alive & (std::uint64_t{1} << r)) matched[r] = i + 1;
  }
  return matched;
}

void prefix_index::insert(const std::vector<std::uint64_t>& chain, std::size_t replica) {
  if (replica >= max_replicas) return;
  // From the longest prefix to the shortest: the shortest ends most recently used, so eviction takes
  // leaves before the prefixes they extend.
  for (auto h = chain.rbegin(); h != chain.rend(); ++h) {
    auto [it, fresh] = map_.try_emplace(*h);
    if (fresh) {
      lru_.push_front(*h);
      it->second.lru = lru_.begin();
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    it->second.replicas |= std::uint64_t{1} << replica;
  }
  while (map_.size() > max_blocks_) {
    map_.erase(lru_.back());
    lru_.pop_back();
    ++evictions_;
  }
}

void prefix_index::forget(std::size_t replica) {
  if (replica >= max_replicas) return;
  for (auto it = map_.begin(); it != map_.end();) {
    it->second.replicas &= ~(std::uint64_t{1} << replica);
    if (it->second.replicas == 0) {
      lru_.erase(it->second.lru);
      it = map_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- router ----

struct router::replica {
  std::string url;
  bool healthy = true;
  int failures = 0;  // in a row
  std::size_t in_flight = 0;
  std::size_t queued_bytes = 0;
  std::optional<double> ttft;
  clock::time_point ttft_at{};
  std::uint64_t picks = 0, prompt_bytes = 0, cached_bytes = 0, ejections = 0, readmissions = 0;
  std::uint64_t outcomes[4] = {};  // by lease::outcome
};

router::router(std::vector<std::string> replicas, router_options options)
    : o_(std::move(options)), index_(o_.block_bytes, o_.max_blocks) {
  if (replicas.empty()) throw std::invalid_argument("the router needs at least one replica");
  if (replicas.size() > prefix_index::max_replicas)
    throw std::invalid_argument(
        fmt::format("the router takes at most {} replicas ({} given)", prefix_index::max_replicas, replicas.size()));
  if (o_.max_in_flight == 0) throw std::invalid_argument("max_in_flight must be at least 1");
  if (o_.eject_after < 1) throw std::invalid_argument("eject_after must be at least 1");
  for (auto& url : replicas) {
    auto r = std::make_unique<replica>();
    r->url = std::move(url);
    replicas_.push_back(std::move(r));
  }
}

router::~router() = default;

std::size_t router::size() const { return replicas_.size(); }

std::optional<double> router::ttft_of(const replica& r, clock::time_point now) const {
  if (!r.ttft || now - r.ttft_at > o_.ttft_window) return std::nullopt;
  return r.ttft;
}

std::variant<lease, refusal> router::pick(std::string_view prompt, const std::vector<std::size_t>& exclude) {
  auto chain = o_.how == policy::prefix ? index_.chain(prompt) : std::vector<std::uint64_t>{};
  std::lock_guard lock(m_);
  auto now = o_.now();
  const auto n = replicas_.size();
  auto excluded = [&](std::size_t i) { return std::find(exclude.begin(), exclude.end(), i) != exclude.end(); };
  std::vector<bool> open(n, false);
  bool any_healthy = false, any_open = false;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = *replicas_[i];
    if (!r.healthy || excluded(i)) continue;
    any_healthy = true;
    open[i] = r.in_flight < o_.max_in_flight;
    any_open = any_open || open[i];
  }
  if (!any_open) return any_healthy ? refusal::all_full : refusal::none_healthy;

  // Relative slowness: recent TTFT over the fastest replica's (1 without an estimate), at most 50.
  double fastest = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i)
    if (auto t = ttft_of(*replicas_[i], now); t && *t > 0 && open[i]) fastest = std::min(fastest, *t);
  auto slowness = [&](std::size_t i) {
    auto t = ttft_of(*replicas_[i], now);
    if (!t || !std::isfinite(fastest)) return 1.0;
    return std::clamp(*t / fastest, 1.0, 50.0);
  };
  auto load = [&](std::size_t i) {
    const auto& r = *replicas_[i];
    return static_cast<double>(r.queued_bytes + r.in_flight * o_.request_bytes);
  };

  std::vector<std::size_t> matched(n, 0);
  if (o_.how == policy::prefix) matched = index_.match(chain, n);
  std::size_t chosen = n;
  reason why = reason::round_robin;
  if (o_.how == policy::round_robin) {
    for (std::size_t k = 0; k < n && chosen == n; ++k)
      if (open[(cursor_ + k) % n]) chosen = (cursor_ + k) % n;
    cursor_ = (chosen + 1) % n;
  } else {
    // Lowest cost; ties go to the first from the cursor on, which moves every pick (ties spread out).
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < n; ++k) {
      auto i = (cursor_ + k) % n;
      if (!open[i]) continue;
      double uncached = 0;
      if (o_.how == policy::prefix)
        uncached = static_cast<double>(prompt.size() - std::min(prompt.size(), matched[i] * o_.block_bytes));
      // The load with this request added: an idle slow replica still costs its slowness.
      double cost = (uncached + load(i) + static_cast<double>(o_.request_bytes)) * slowness(i);
      if (cost < best) best = cost, chosen = i;
    }
    cursor_ = (cursor_ + 1) % n;
    if (o_.how == policy::least_loaded) {
      why = reason::least_loaded;
    } else {
      std::size_t longest = 0;
      for (std::size_t i = 0; i < n; ++i)
        if (replicas_[i]->healthy && !excluded(i)) longest = std::max(longest, matched[i]);
      why = longest == 0 ? reason::no_prefix : matched[chosen] == longest ? reason::prefix_hit : reason::prefix_overloaded;
    }
  }

  auto& r = *replicas_[chosen];
  lease l;
  l.r_ = this;
  l.replica_ = chosen;
  l.why_ = why;
  l.cached_ = std::min(prompt.size(), matched[chosen] * o_.block_bytes);
  l.queued_ = prompt.size() - l.cached_;
  ++r.in_flight;
  ++r.picks;
  r.queued_bytes += l.queued_;
  r.prompt_bytes += prompt.size();
  r.cached_bytes += l.cached_;
  ++decisions_[static_cast<int>(why)];
  // Recorded now, not at the answer: the next turn of a conversation that is still being answered, and its
  // siblings sent meanwhile, go to the same replica.
  if (o_.how == policy::prefix) index_.insert(chain, chosen);
  return l;
}

void router::first_token(lease& l, double seconds) {
  std::lock_guard lock(m_);
  auto& r = *replicas_[l.replica_];
  r.queued_bytes -= std::min(r.queued_bytes, l.queued_);
  l.queued_ = 0;
  auto now = o_.now();
  if (!std::isfinite(seconds) || seconds < 0) return;
  r.ttft = ttft_of(r, now) ? o_.ttft_alpha * seconds + (1 - o_.ttft_alpha) * *r.ttft : seconds;
  r.ttft_at = now;
}

void router::fail(std::size_t i) {
  auto& r = *replicas_[i];
  if (++r.failures < o_.eject_after || !r.healthy) return;
  r.healthy = false;
  ++r.ejections;
  index_.forget(i);
}

void router::finish(lease& l, lease::outcome o) {
  std::lock_guard lock(m_);
  auto& r = *replicas_[l.replica_];
  r.queued_bytes -= std::min(r.queued_bytes, l.queued_);
  l.queued_ = 0;
  --r.in_flight;
  ++r.outcomes[static_cast<int>(o)];
  if (o == lease::outcome::ok) r.failures = 0;
  if (o == lease::outcome::failed) fail(l.replica_);
}

void router::probed(std::size_t i, bool ok) {
  std::lock_guard lock(m_);
  auto& r = *replicas_.at(i);
  if (!ok) return fail(i);
  r.failures = 0;
  if (!r.healthy) {
    r.healthy = true;
    ++r.readmissions;
  }
}

void router::count_retry(bool mid_stream) {
  std::lock_guard lock(m_);
  ++retries_[mid_stream ? 1 : 0];
}

void router::count_refusal(refusal why) {
  std::lock_guard lock(m_);
  ++refusals_[static_cast<int>(why)];
}

replica_view router::view(std::size_t i) const {
  std::lock_guard lock(m_);
  const auto& r = *replicas_.at(i);
  return {r.url, r.healthy, r.in_flight, r.queued_bytes, ttft_of(r, o_.now()), r.picks};
}

int router::retry_after_seconds() const {
  std::lock_guard lock(m_);
  auto now = o_.now();
  double fastest = std::numeric_limits<double>::infinity();
  for (const auto& r : replicas_)
    if (auto t = ttft_of(*r, now)) fastest = std::min(fastest, *t);
  if (!std::isfinite(fastest)) return 1;
  return std::clamp(static_cast<int>(std::ceil(fastest)), 1, 60);
}

std::string router::metrics_text() const { return observe::write_text(metrics_families()); }

std::vector<observe::family> router::metrics_families() const {
  using observe::family;
  using observe::metric_type;
  std::lock_guard lock(m_);
  auto now = o_.now();
  std::vector<family> out;
  out.reserve(16);  // add() hands out references into it: no reallocation while they live
  auto add = [&](const char* name, const char* help, metric_type type) -> family& {
    out.push_back({name, help, type, {}});
    return out.back();
  };
  const std::string pol = policy_name(o_.how);
  auto& decisions = add("loom_route_decisions_total",
                        "Replicas chosen, by policy and why: prefix_hit (the longest known prefix), prefix_overloaded "
                        "(another replica held a longer prefix but its load lost), no_prefix (no replica held any), "
                        "least_loaded, round_robin.",
                        metric_type::counter);
  for (int k = 0; k < 5; ++k)
    decisions.samples.push_back(
        {"loom_route_decisions_total", {{"policy", pol}, {"reason", reason_name(static_cast<reason>(k))}},
         static_cast<double>(decisions_[k])});
  auto& refusals = add("loom_route_refusals_total",
                       "Requests refused: all_full (every healthy replica at its in-flight limit: 429) or "
                       "none_healthy (503).",
                       metric_type::counter);
  refusals.samples.push_back({"loom_route_refusals_total", {{"reason", "all_full"}}, static_cast<double>(refusals_[0])});
  refusals.samples.push_back(
      {"loom_route_refusals_total", {{"reason", "none_healthy"}}, static_cast<double>(refusals_[1])});
  auto& retries = add("loom_route_retries_total",
                      "Requests sent again to another replica: before_first_token (the replica failed before it "
                      "answered) or mid_stream (it died mid-answer; the partial answer went on as a prefix).",
                      metric_type::counter);
  retries.samples.push_back(
      {"loom_route_retries_total", {{"when", "before_first_token"}}, static_cast<double>(retries_[0])});
  retries.samples.push_back({"loom_route_retries_total", {{"when", "mid_stream"}}, static_cast<double>(retries_[1])});

  auto& requests = add("loom_route_requests_total",
                       "Requests sent to a replica, by outcome: ok, failed (counts toward ejection), busy (the "
                       "replica said 429), abandoned (the client left or the request was refused as invalid).",
                       metric_type::counter);
  auto& in_flight = add("loom_route_in_flight", "Requests on a replica now.", metric_type::gauge);
  auto& queued = add("loom_route_queued_prompt_bytes",
                     "Prompt bytes sent to a replica and not yet answered with a first token, less the prefix "
                     "expected cached.",
                     metric_type::gauge);
  auto& ttft = add("loom_route_ttft_seconds",
                   "A replica's recent time to first token (moving average; absent without a recent sample).",
                   metric_type::gauge);
  auto& healthy = add("loom_route_replica_healthy", "1 when a replica takes requests, 0 while ejected.",
                      metric_type::gauge);
  auto& ejections = add("loom_route_ejections_total", "Times a replica was ejected after failures in a row.",
                        metric_type::counter);
  auto& readmissions = add("loom_route_readmissions_total", "Times an ejected replica was let back in by a probe.",
                           metric_type::counter);
  auto& prompt = add("loom_route_prompt_bytes_total", "Prompt bytes sent to a replica.", metric_type::counter);
  auto& cached = add("loom_route_cached_prefix_bytes_total",
                     "Of those, the bytes the router expected cached there (its prefix index).", metric_type::counter);
  static const char* outcome_names[] = {"ok", "failed", "busy", "abandoned"};
  for (const auto& r : replicas_) {
    observe::label_set l{{"replica", r->url}};
    for (int k = 0; k < 4; ++k) {
      auto with = l;
      with.emplace_back("outcome", outcome_names[k]);
      requests.samples.push_back({"loom_route_requests_total", with, static_cast<double>(r->outcomes[k])});
    }
    in_flight.samples.push_back({"loom_route_in_flight", l, static_cast<double>(r->in_flight)});
    queued.samples.push_back({"loom_route_queued_prompt_bytes", l, static_cast<double>(r->queued_bytes)});
    if (auto t = ttft_of(*r, now)) ttft.samples.push_back({"loom_route_ttft_seconds", l, *t});
    healthy.samples.push_back({"loom_route_replica_healthy", l, r->healthy ? 1.0 : 0.0});
    ejections.samples.push_back({"loom_route_ejections_total", l, static_cast<double>(r->ejections)});
    readmissions.samples.push_back({"loom_route_readmissions_total", l, static_cast<double>(r->readmissions)});
    prompt.samples.push_back({"loom_route_prompt_bytes_total", l, static_cast<double>(r->prompt_bytes)});
    cached.samples.push_back({"loom_route_cached_prefix_bytes_total", l, static_cast<double>(r->cached_bytes)});
  }
  add("loom_route_prefix_blocks", "Prefixes (blocks) in the router's prefix index.", metric_type::gauge)
      .samples.push_back({"loom_route_prefix_blocks", {}, static_cast<double>(index_.blocks())});
  add("loom_route_prefix_evictions_total", "Prefixes evicted from the index (least recently used first).",
      metric_type::counter)
      .samples.push_back({"loom_route_prefix_evictions_total", {}, static_cast<double>(index_.evictions())});
  std::sort(out.begin(), out.end(), [](const family& a, const family& b) { return a.name < b.name; });
  return out;
}

// ---- lease ----

lease::lease(lease&& o) noexcept
    : r_(std::exchange(o.r_, nullptr)), replica_(o.replica_), why_(o.why_), cached_(o.cached_), queued_(o.queued_) {}

lease& lease::operator=(lease&& o) noexcept {
  if (this != &o) {
    if (r_) finish(outcome::abandoned);
    r_ = std::exchange(o.r_, nullptr);
    replica_ = o.replica_;
    why_ = o.why_;
    cached_ = o.cached_;
    queued_ = o.queued_;
  }
  return *this;
}

lease::~lease() {
  if (r_) finish(outcome::abandoned);
}

void lease::first_token(double seconds) {
  if (r_) r_->first_token(*this, seconds);
}

void lease::finish(outcome o) {
  if (auto* r = std::exchange(r_, nullptr)) r->finish(*this, o);
}

}  // namespace loom::route
