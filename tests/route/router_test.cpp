// tests/route/router_test.cpp: the router's decisions without sockets: the prefix index (chains, matches,
// LRU eviction), each policy, admission, ejection and readmission, TTFT-weighted load, the metrics text.
#include <doctest/doctest.h>

#include <string>

#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/route/router.hpp"

using namespace loom::route;

namespace {

std::string text(char c, std::size_t n) { return std::string(n, c); }

lease take(router& r, std::string_view prompt, const std::vector<std::size_t>& exclude = {}) {
  auto got = r.pick(prompt, exclude);
  REQUIRE(std::holds_alternative<lease>(got));
  return std::move(std::get<lease>(got));
}

std::vector<std::string> urls(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("http://r" + std::to_string(i));
  return out;
}

}  // namespace

TEST_CASE("prefix index: chained block hashes name whole prefixes") {
  prefix_index idx(4, 100);
  auto a = idx.chain("abcdefgh");
  auto b = idx.chain("abcdxxxx");
  auto c = idx.chain("zzzzefgh");
  REQUIRE(a.size() == 2);
  CHECK(idx.chain("abcdefghij").size() == 2);  // a partial last block does not count
  CHECK(a[0] == b[0]);
  CHECK(a[1] != b[1]);
  CHECK(a[1] != c[1]);  // the same block after another prefix is another prefix
  idx.insert(a, 1);
  auto m = idx.match(b, 3);
  CHECK(m == std::vector<std::size_t>{0, 1, 0});
  m = idx.match(a, 3);
  CHECK(m == std::vector<std::size_t>{0, 2, 0});
  idx.insert(b, 2);
  m = idx.match(a, 3);
  CHECK(m == std::vector<std::size_t>{0, 2, 1});
  idx.forget(1);
  CHECK(idx.match(a, 3) == std::vector<std::size_t>{0, 0, 1});
  CHECK(idx.blocks() == 2);  // a's second block went with replica 1; the shared first block stays for 2
}

TEST_CASE("prefix index: bounded, the least recently used leaves go first") {
  prefix_index idx(4, 4);
  auto a = idx.chain("aaaabbbbcccc");  // 3 blocks
  auto b = idx.chain("xxxxyyyy");      // 2 blocks
  idx.insert(a, 0);
  idx.insert(b, 0);
  CHECK(idx.blocks() == 4);
  CHECK(idx.evictions() == 1);
  // a's leaf went first; its shorter prefixes are still known
  CHECK(idx.match(a, 1)[0] == 2);
  CHECK(idx.match(b, 1)[0] == 2);
}

TEST_CASE("prefix policy: a conversation goes back where its prefix is; a new one goes to the least loaded") {
  router_options o;
  o.block_bytes = 8;
  router r(urls(4), o);
  std::string system = text('s', 800);
  auto first = take(r, system + "user one");
  CHECK(first.why() == reason::no_prefix);
  auto where = first.replica();
  first.first_token(0.1);
  first.finish(lease::outcome::ok);
  // The same conversation, one turn longer: the same replica, its prefix expected cached.
  auto second = take(r, system + "user one" + "assistant two" + "user three");
  CHECK(second.replica() == where);
  CHECK(second.why() == reason::prefix_hit);
  CHECK(second.cached_bytes() >= 800);
  second.finish(lease::outcome::ok);
  // Another prompt that shares nothing: not on a replica that holds something else, all being idle it is
  // a tie broken by turn, and the reason says no prefix was known.
  auto other = take(r, text('q', 800));
  CHECK(other.why() == reason::no_prefix);
}

TEST_CASE("prefix policy: the holder of the prefix loses to load when it is busy enough") {
  router_options o;
  o.block_bytes = 8;
  o.request_bytes = 100;
  router r(urls(2), o);
  std::string shared = text('s', 1000);
  auto a = take(r, shared + "a");
  auto holder = a.replica();
  a.first_token(0.1);
  // Each request in flight weighs 100 bytes (and its 2 uncached bytes): nine more on the holder still
  // cost less than reading the 1000 bytes afresh elsewhere.
  std::vector<lease> busy;
  for (int i = 0; i < 9; ++i) {
    busy.push_back(take(r, shared + "b" + std::to_string(i)));
    REQUIRE(busy.back().replica() == holder);
    CHECK(busy.back().why() == reason::prefix_hit);
  }
  // the tenth: 1 + 18 + 1000 against 1001 + 100
  auto next = take(r, shared + "c");
  CHECK(next.replica() != holder);
  CHECK(next.why() == reason::prefix_overloaded);
}

TEST_CASE("least-loaded and round-robin") {
  SUBCASE("least-loaded: the replica with fewer in flight") {
    router_options o;
    o.how = policy::least_loaded;
    router r(urls(3), o);
    auto a = take(r, "x");
    auto b = take(r, "x");
    auto c = take(r, "x");
    CHECK(a.replica() != b.replica());
    CHECK(c.replica() != a.replica());
    CHECK(c.replica() != b.replica());
    b.finish(lease::outcome::ok);
    auto d = take(r, "x");
    CHECK(d.replica() == b.replica());
    CHECK(d.why() == reason::least_loaded);
  }
  SUBCASE("round-robin: in turn, skipping the unhealthy") {
    router_options o;
    o.how = policy::round_robin;
    o.eject_after = 1;
    router r(urls(3), o);
    CHECK(take(r, "x").replica() == 0);
    CHECK(take(r, "x").replica() == 1);
    CHECK(take(r, "x").replica() == 2);
    r.probed(1, false);
    CHECK(take(r, "x").replica() == 0);
    CHECK(take(r, "x").replica() == 2);
    CHECK(take(r, "x").why() == reason::round_robin);
  }
}

TEST_CASE("admission: a full replica is skipped; all full is refused as all_full; all ejected as none_healthy") {
  router_options o;
  o.max_in_flight = 2;
  o.eject_after = 2;
  router r(urls(2), o);
  std::vector<lease> held;
  for (int i = 0; i < 4; ++i) held.push_back(take(r, "p"));
  CHECK(r.view(0).in_flight == 2);
  CHECK(r.view(1).in_flight == 2);
  auto refused = r.pick("p");
  REQUIRE(std::holds_alternative<refusal>(refused));
  CHECK(std::get<refusal>(refused) == refusal::all_full);
  held.pop_back();  // abandoned: frees its place, not a failure
  CHECK(std::holds_alternative<lease>(r.pick("p")));
  // Two failures in a row eject; requests already tried are excluded too.
  r.probed(0, false);
  CHECK(r.view(0).healthy);
  r.probed(0, false);
  CHECK_FALSE(r.view(0).healthy);
  held.clear();
  auto only = take(r, "p");
  CHECK(only.replica() == 1);
  auto none = r.pick("p", {1});
  REQUIRE(std::holds_alternative<refusal>(none));
  CHECK(std::get<refusal>(none) == refusal::none_healthy);
  // A probe that succeeds lets it back in.
  r.probed(0, true);
  CHECK(r.view(0).healthy);
  CHECK(take(r, "p", {1}).replica() == 0);
}

TEST_CASE("failures: requests that fail eject; a success in between resets the count") {
  router_options o;
  o.eject_after = 2;
  o.how = policy::round_robin;
  router r(urls(2), o);
  take(r, "p").finish(lease::outcome::failed);  // replica 0
  take(r, "p").finish(lease::outcome::ok);      // 1
  take(r, "p").finish(lease::outcome::ok);      // 0: resets
  take(r, "p").finish(lease::outcome::ok);      // 1
  take(r, "p").finish(lease::outcome::failed);  // 0
  CHECK(r.view(0).healthy);
  take(r, "p").finish(lease::outcome::busy);  // 1: a 429 is not a failure
  take(r, "p").finish(lease::outcome::failed);  // 0: the second in a row
  CHECK_FALSE(r.view(0).healthy);
  CHECK(r.view(1).healthy);
}

TEST_CASE("a slow replica (recent TTFT) gets fewer requests, until its estimate is old") {
  auto t = clock::time_point{} + std::chrono::hours(1);
  router_options o;
  o.how = policy::least_loaded;
  o.now = [&] { return t; };
  router r(urls(2), o);
  auto a = take(r, "p");
  auto b = take(r, "p");
  REQUIRE(a.replica() != b.replica());
  (a.replica() == 0 ? a : b).first_token(0.1);
  (a.replica() == 1 ? a : b).first_token(2.0);
  a.finish(lease::outcome::ok);
  b.finish(lease::outcome::ok);
  int to_slow = 0;
  std::vector<lease> held;
  for (int i = 0; i < 10; ++i) {
    held.push_back(take(r, "p"));
    to_slow += held.back().replica() == 1;
  }
  // 20x slower: one request on it weighs as much as twenty on the fast one
  CHECK(to_slow == 0);
  held.clear();
  t += std::chrono::seconds(31);  // the estimates are forgotten: both are tried again
  auto c = take(r, "p");
  auto d = take(r, "p");
  CHECK(c.replica() != d.replica());
  CHECK(r.retry_after_seconds() == 1);
}

TEST_CASE("retry-after: the fastest recent TTFT, rounded up") {
  router r(urls(2));
  auto a = take(r, "p");
  a.first_token(2.5);
  CHECK(r.retry_after_seconds() == 3);
}

TEST_CASE("metrics: Prometheus text that loom's own reader takes back, with the reasons counted") {
  router_options o;
  o.block_bytes = 8;
  router r(urls(2), o);
  std::string p = text('s', 100);
  auto first = take(r, p);
  first.first_token(0.25);
  first.finish(lease::outcome::ok);
  take(r, p + "more").finish(lease::outcome::failed);
  r.count_retry(true);
  r.count_refusal(refusal::all_full);
  auto t = r.metrics_text();
  auto families = loom::observe::parse_text(t);
  CHECK(families.size() == 14);
  auto value = [&](const std::string& name, const loom::observe::label_set& labels) {
    for (const auto& f : families)
      for (const auto& s : f.samples)
        if (s.name == name && s.labels == labels) return s.value;
    FAIL("no sample " << name);
    return -1.0;
  };
  CHECK(value("loom_route_decisions_total", {{"policy", "prefix"}, {"reason", "no_prefix"}}) == 1);
  CHECK(value("loom_route_decisions_total", {{"policy", "prefix"}, {"reason", "prefix_hit"}}) == 1);
  CHECK(value("loom_route_retries_total", {{"when", "mid_stream"}}) == 1);
  CHECK(value("loom_route_refusals_total", {{"reason", "all_full"}}) == 1);
  CHECK(t.find("# TYPE loom_route_decisions_total counter") != std::string::npos);
  CHECK(t.find("# HELP loom_route_in_flight ") != std::string::npos);
}

TEST_CASE("bad options are refused with the reason") {
  CHECK_THROWS_WITH_AS(router({}), "the router needs at least one replica", std::invalid_argument);
  router_options o;
  o.max_in_flight = 0;
  CHECK_THROWS_AS(router(urls(1), o), std::invalid_argument);
  CHECK_THROWS_AS(router(urls(65)), std::invalid_argument);
  CHECK(parse_policy("least-loaded") == policy::least_loaded);
  CHECK_FALSE(parse_policy("random"));
}
