// Tests of agent.llm with `base_urls`: its requests routed across replicas (chat servers the test runs on
// 127.0.0.1) by the in-process router of runtime/route: conversations that share a prefix stay on one
// replica and different ones spread; agents that name the same replicas share one router; a replica that
// is down or answers 503 costs a retry on another, never a failed call, and the counters add up; base_url
// and base_urls together are refused, by validation and when the node is built.
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "tests/agents/agent_harness.hpp"
#include "tests/agents/chat_server.hpp"

using loom::value;
using namespace loom::test;

namespace {

// A replica that answers every request with its own name.
chat_server::answer_fn answers(std::string name) {
  return [name](const ojson&, std::size_t, httplib::Response& res) { reply_json(res, message_reply(name)); };
}

loom::graph::config url_list(std::vector<std::string> urls) {
  loom::graph::config_list l;
  for (auto& u : urls) l.emplace_back(std::move(u));
  return loom::graph::config(std::move(l));
}

// The value of one series of the process's metrics page (`name{labels}` exactly as written there), or -1.
double series(const std::string& name_and_labels) {
  std::istringstream page(loom::observe::metrics().text());
  for (std::string line; std::getline(page, line);)
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  return -1;
}

// How many of a server's requests had this system prompt.
std::size_t with_system(chat_server& s, const std::string& system) {
  std::size_t n = 0;
  for (const auto& b : s.bodies())
    if (b["messages"][0]["content"] == system) ++n;
  return n;
}

}  // namespace

TEST_SUITE("agent.llm base_urls" * doctest::timeout(60)) {
  TEST_CASE("prefix policy: each conversation prefix stays on one replica, and different ones spread") {
    ::unsetenv("LOOM_LLM_BASE_URL");
    chat_server a(answers("A")), b(answers("B"));
    // Long shared system prompts: the prefix the router remembers outweighs any difference in the
    // replicas' recent times to first token (at most 50x), so the choice does not depend on timing.
    std::string one = "team one: " + std::string(100'000, 'x'), two = "team two: " + std::string(100'000, 'y');
    auto urls = url_list({a.base_url(), b.base_url()});
    agent_under_test t1({{"backend", "http"}, {"base_urls", urls}, {"system", one}, {"backoff_ms", std::int64_t{1}}}, "t1");
    agent_under_test t2({{"backend", "http"}, {"base_urls", urls}, {"system", two}, {"backoff_ms", std::int64_t{1}}}, "t2");
    for (int i = 0; i < 5; ++i) {
      t1.send(value{"task " + std::to_string(i)});
      t2.send(value{"task " + std::to_string(i)});
    }
    REQUIRE(t1.out().size() == 5);
    REQUIRE(t2.out().size() == 5);
    // All of team one's requests on one replica, all of team two's on the other (the first of each had no
    // prefix anywhere: it went to the least loaded, in turn).
    CHECK(with_system(a, one) + with_system(b, one) == 5);
    CHECK(with_system(a, two) + with_system(b, two) == 5);
    CHECK((with_system(a, one) == 5) != (with_system(b, one) == 5));
    CHECK((with_system(a, one) == 5) == (with_system(b, two) == 5));
    std::set<std::string> t1_answers, t2_answers;
    for (std::size_t i = 0; i < 5; ++i) t1_answers.insert(t1.text(i)), t2_answers.insert(t2.text(i));
    CHECK(t1_answers.size() == 1);
    CHECK(t2_answers.size() == 1);
    CHECK(*t1_answers.begin() != *t2_answers.begin());
    // The shared router's metrics are the process's while its agents live: 2 choices without a prefix, 8 hits.
    CHECK(series(R"(loom_route_decisions_total{policy="prefix",reason="no_prefix"})") == 2);
    CHECK(series(R"(loom_route_decisions_total{policy="prefix",reason="prefix_hit"})") == 8);
  }

  TEST_CASE("agents that name the same replicas share one router: round-robin goes round across them") {
    ::unsetenv("LOOM_LLM_BASE_URL");
    chat_server a(answers("A")), b(answers("B"));
    auto urls = url_list({a.base_url(), b.base_url() + "/"});  // the same replica with a trailing slash
    agent_under_test x({{"backend", "http"}, {"base_urls", urls}, {"route_policy", "round-robin"}}, "x");
    agent_under_test y({{"backend", "http"}, {"base_urls", url_list({a.base_url(), b.base_url()})},
                        {"route_policy", "round-robin"}},
                       "y");
    for (int i = 0; i < 3; ++i) {
      x.send(value{"hi"});
      y.send(value{"hi"});
    }
    // One router: x, y, x, y... take turns on A, B, A, B...; two routers would each start at A.
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(x.text(i) == "A");
      CHECK(y.text(i) == "B");
    }
    CHECK(a.bodies().size() == 3);
    CHECK(b.bodies().size() == 3);
  }

  TEST_CASE("a replica that is down or answers 503: every call succeeds on the other, and the counts add up") {
    ::unsetenv("LOOM_LLM_BASE_URL");
    for (bool closed : {true, false}) {
      CAPTURE(closed);
      std::string down_url;
      std::unique_ptr<chat_server> down;
      if (closed) {
        chat_server gone(answers("gone"));
        down_url = gone.base_url();  // its port is closed when `gone` ends
      } else {
        down = std::make_unique<chat_server>([](const ojson&, std::size_t, httplib::Response& res) {
          reply_json(res, {{"error", {{"message", "overloaded"}}}}, 503);
        });
        down_url = down->base_url();
      }
      chat_server up(answers("up"));
      std::string node = closed ? "closed_agent" : "busy_agent";
      agent_under_test agent({{"backend", "http"},
                              {"base_urls", url_list({down_url, up.base_url()})},
                              {"retries", std::int64_t{2}},
                              {"backoff_ms", std::int64_t{1}}},
                             node);
      for (int i = 0; i < 6; ++i) agent.send(value{"question " + std::to_string(i)});
      REQUIRE(agent.out().size() == 6);
      for (std::size_t i = 0; i < 6; ++i) CHECK(agent.text(i) == "up");
      CHECK(up.bodies().size() == 6);
      auto replica = [](const std::string& url, const char* outcome) {
        return series(R"(loom_route_requests_total{replica=")" + url + R"(",outcome=")" + outcome + R"("})");
      };
      double failed = replica(down_url, "failed");
      CHECK(failed >= 1);  // the first call tried it (no prefix anywhere, the first replica in turn)
      CHECK(replica(down_url, "ok") == 0);
      CHECK(replica(up.base_url(), "ok") == 6);
      CHECK(replica(up.base_url(), "failed") == 0);
      // Every failed attempt was retried on the other replica, and the agent counted each attempt.
      CHECK(series(R"(loom_route_retries_total{when="before_first_token"})") == failed);
      auto status = closed ? "connection" : "503";
      CHECK(series(R"(loom_agent_llm_requests_total{node=")" + node + R"(",status=")" + status + R"("})") == failed);
      CHECK(series(R"(loom_agent_llm_requests_total{node=")" + node + R"(",status="200"})") == 6);
      if (down) CHECK(down->bodies().size() == static_cast<std::size_t>(failed));
    }
  }

  TEST_CASE("base_url and base_urls together are refused: by validation, naming the node, and by the node") {
    loom::graph::diagnostics d;
    auto g = loom::graph::load_graph_text(R"(graph: both
nodes:
  src: {kind: source.sequence, params: {count: 1}}
  bot:
    kind: agent.llm
    params:
      backend: http
      base_url: http://127.0.0.1:8000/v1
      base_urls: [http://127.0.0.1:8001/v1, http://127.0.0.1:8002/v1]
  empty: {kind: agent.llm, params: {backend: http, base_urls: []}}
  out: {kind: sink.count}
edges: [src -> bot, bot -> empty, empty -> out]
)",
                                          "both.yaml", d);
    REQUIRE(g.has_value());
    loom::graph::validate(*g, builtin_kinds(), d);
    CHECK(d.has_errors());
    CHECK_MESSAGE(d.str().find("both.yaml:9:") != std::string::npos, d.str());
    CHECK_MESSAGE(d.str().find("agent.llm `bot`: base_url and base_urls are both set: give base_url (one server) "
                               "or base_urls (its replicas), not both") != std::string::npos,
                  d.str());
    CHECK_MESSAGE(d.str().find("agent.llm `empty`: base_urls: expected a non-empty list of URLs") != std::string::npos,
                  d.str());

    ::unsetenv("LOOM_LLM_BASE_URL");
    CHECK_THROWS_WITH(agent_under_test({{"backend", "http"},
                                        {"base_url", "http://127.0.0.1:8000/v1"},
                                        {"base_urls", url_list({"http://127.0.0.1:8001/v1"})}},
                                       "bot"),
                      doctest::Contains("agent.llm `bot`: base_url and base_urls are both set"));
    // Each replica's URL is checked as base_url is, named by its place in the list.
    CHECK_THROWS_WITH(agent_under_test({{"backend", "http"},
                                        {"base_urls", url_list({"http://127.0.0.1:8001/v1", "ftp://host/v1"})}},
                                       "bot"),
                      "agent.llm `bot`: base_urls[1] `ftp://host/v1`: the scheme must be http or https");
  }
}
