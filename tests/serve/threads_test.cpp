// tests/serve/threads_test.cpp: threads of `loom serve --state` (docs/durability.md, "Threads") on the real
// binary over 127.0.0.1. The served graph's agent (tests/serve/thread_agent.yaml, `memory: 4`) asks a
// chat-completions server of the test's own, which answers with the number of messages it was sent: one
// for a task with no memory, three after one exchange, and so on. So each answer says what the agent
// remembered: per thread, across requests, across a restart of the server, and not past --thread-idle.
#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/state/store.hpp"
#include "tests/agents/chat_server.hpp"
#include "tests/cli/process.hpp"
#include "tests/serve/serve_process.hpp"

namespace {

using nlohmann::json;
using namespace loom;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A fresh directory for one test, removed after it.
struct scratch {
  fs::path root;
  scratch() {
    std::string tmpl = (fs::temp_directory_path() / "loom_threads_test.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path state() const { return root / "threads"; }
};

// The model: answers each request with how many messages it holds.
struct counting_model {
  test::chat_server server{[](const test::ojson& body, std::size_t, httplib::Response& res) {
    test::reply_json(res, test::message_reply(std::to_string(body["messages"].size())));
  }};
};

std::vector<std::string> serve_args(const counting_model& m, const scratch& tmp, const std::string& idle = "24h") {
  return {"--set", "agent.base_url=" + m.server.base_url(), "--state", tmp.state().string(), "--thread-idle", idle};
}

// One whole completion; `thread` in the header when `header` is set, else in `user` (empty: neither).
httplib::Result ask(httplib::Client& c, const std::string& text, const std::string& thread, bool header = true) {
  json body = {{"model", "thread_agent"}, {"messages", json::array({{{"role", "user"}, {"content", text}}})}};
  httplib::Headers h;
  if (!thread.empty() && header) h.emplace("X-Loom-Thread", thread);
  if (!thread.empty() && !header) body["user"] = thread;
  return c.Post("/v1/chat/completions", h, body.dump(), "application/json");
}

// The answer's text, with the response's body when it was not a 200.
std::string answer(httplib::Client& c, const std::string& text, const std::string& thread, bool header = true) {
  auto r = ask(c, text, thread, header);
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body);
  return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
}

std::uintmax_t file_bytes(const fs::path& dir) {
  std::uintmax_t n = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    auto s = fs::file_size(fs::path((dir / "state.sqlite").string() + suffix), ec);
    if (!ec) n += s;
  }
  return n;
}

}  // namespace

TEST_CASE("agent.llm with memory holds state; without it, it does not (recover: replace is refused)" *
          doctest::timeout(10)) {
  registry kinds;
  actors::register_builtins(kinds);
  const auto* k = kinds.find_kind("agent.llm");
  REQUIRE(k != nullptr);
  CHECK(k->thread_state);
  CHECK_FALSE(k->holds_state(graph::config(graph::config_map{{"memory", std::int64_t{0}}})));
  CHECK(k->holds_state(graph::config(graph::config_map{{"memory", std::int64_t{3}}})));
  CHECK_FALSE(kinds.find_kind("sink.file")->thread_state);  // a sink's checkpoint is its progress, not a memory
}

TEST_CASE("a thread keeps its agent's memory across requests; other threads and thread-less requests do not" *
          doctest::timeout(60)) {
  scratch tmp;
  counting_model model;
  test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
  httplib::Client c{s.host(), s.port()};
  CHECK(answer(c, "my name is Ada", "t1") == "1");
  CHECK(answer(c, "what is my name?", "t1") == "3");  // the first exchange came along
  CHECK(answer(c, "hello", "t2") == "1");              // another thread starts empty
  CHECK(answer(c, "hello", "") == "1");                // no thread: no memory, and none kept
  CHECK(answer(c, "hello", "") == "1");
  CHECK(answer(c, "and now?", "t1") == "5");
  CHECK(answer(c, "via user", "u1", false) == "1");  // the `user` field names a thread too
  CHECK(answer(c, "via user again", "u1", false) == "3");

  // What the model saw on t1's third request: the two earlier exchanges, oldest first, then the task.
  auto bodies = model.server.bodies();
  REQUIRE(bodies.size() == 8);
  const auto& m = bodies[5]["messages"];
  REQUIRE(m.size() == 5);
  CHECK(m[0] == test::ojson({{"role", "user"}, {"content", "my name is Ada"}}));
  CHECK(m[1] == test::ojson({{"role", "assistant"}, {"content", "1"}}));
  CHECK(m[2] == test::ojson({{"role", "user"}, {"content", "what is my name?"}}));
  CHECK(m[3] == test::ojson({{"role", "assistant"}, {"content", "3"}}));
  CHECK(m[4] == test::ojson({{"role", "user"}, {"content", "and now?"}}));

  SUBCASE("the header wins over `user`") {
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}, {"user", "u1"}};
    auto r = c.Post("/v1/chat/completions", httplib::Headers{{"X-Loom-Thread", "t2"}}, body.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(json::parse(r->body)["choices"][0]["message"]["content"] == "3");  // t2 had one exchange, u1 two
  }
  SUBCASE("a thread id past 256 bytes, or with a control character, is a 400 naming where it came from") {
    auto r = ask(c, "x", std::string(257, 'a'));
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(json::parse(r->body)["error"]["message"].get<std::string>().find("X-Loom-Thread is 257 bytes long") !=
          std::string::npos);
    r = ask(c, "x", std::string("a\tb"), false);
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(json::parse(r->body)["error"]["param"] == "user");
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}, {"user", 7}};
    r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(json::parse(r->body)["error"]["param"] == "user");
    CHECK(answer(c, "exactly 256", std::string(256, 'b')) == "1");
  }
}

TEST_CASE("a thread's memory outlives the server process" * doctest::timeout(60)) {
  scratch tmp;
  counting_model model;
  {
    test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
    httplib::Client c{s.host(), s.port()};
    CHECK(answer(c, "remember 42", "kept") == "1");
    CHECK(answer(c, "what was it?", "kept") == "3");
  }  // SIGTERM: exit 0
  test::serve_process again{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
  httplib::Client c{again.host(), again.port()};
  CHECK(answer(c, "still there?", "kept") == "5");
  CHECK(answer(c, "new here", "fresh") == "1");
  auto bodies = model.server.bodies();
  REQUIRE(bodies.size() == 4);
  CHECK(bodies[2]["messages"][0]["content"] == "remember 42");

  SUBCASE("loom runs shows the threads of a live server") {
    auto runs = test::run_process({test::loom_binary(), "runs", tmp.state().string(), "--json"});
    REQUIRE_MESSAGE(runs.status == 0, runs.err);
    auto j = json::parse(runs.out);
    CHECK(j["kind"] == "serve");
    CHECK(j["live"] == true);
    CHECK(j["threads"] == 2);
  }

  SUBCASE("a second server on the same --state is refused while the first lives") {
    std::optional<std::string> error;
    try {
      test::serve_process second{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
    } catch (const std::exception& e) {
      error = e.what();
    }
    REQUIRE(error.has_value());
    CHECK(error->find("exited with status 2") != std::string::npos);
    CHECK(error->find("belongs to a live run") != std::string::npos);
  }
}

TEST_CASE("1000 turns of one thread keep the state file bounded: memory, not history" * doctest::timeout(300)) {
  scratch tmp;
  counting_model model;
  // Each task is 400 bytes, so keeping the history would add about 400 KB over the turns below.
  auto task = [](int i) { return std::to_string(i) + ": " + std::string(400, 'x'); };
  std::uintmax_t after_50 = 0, after_1000 = 0;
  int turn = 0;
  {
    test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
    httplib::Client c{s.host(), s.port()};
    for (; turn < 50; ++turn) CHECK(answer(c, task(turn), "long") == std::to_string(std::min(turn, 4) * 2 + 1));
  }
  after_50 = file_bytes(tmp.state());  // the server stopped: its log is folded into the file
  {
    test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
    httplib::Client c{s.host(), s.port()};
    for (; turn < 1000; ++turn) REQUIRE(answer(c, task(turn), "long") == "9");  // 4 exchanges and the task
  }
  after_1000 = file_bytes(tmp.state());
  MESSAGE("state file: " << after_50 << " bytes after 50 turns, " << after_1000 << " after 1000");
  CHECK(after_50 > 0);
  CHECK(static_cast<double>(after_1000) <= 1.2 * static_cast<double>(after_50));
  auto st = state::store::open(tmp.state(), state::store::access::read_only);
  CHECK(st.thread_count() == 1);
  auto row = st.read_thread("long");
  REQUIRE(row.has_value());
  const auto& memory = row->state.find("agent#0")->find("memory")->as_list();
  REQUIRE(memory.size() == 4);
  CHECK(memory.back().find("user")->as_string() == task(999));
}

TEST_CASE("an idle thread expires: its row is deleted and its next request starts empty" * doctest::timeout(60)) {
  scratch tmp;
  counting_model model;
  test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp, "50ms")};
  httplib::Client c{s.host(), s.port()};
  CHECK(answer(c, "soon forgotten", "brief") == "1");
  // The sweeper deletes the row (every 25 ms here); wait for that, up to a deadline.
  auto until = std::chrono::steady_clock::now() + 20s;
  std::size_t rows = 1;
  while (std::chrono::steady_clock::now() < until) {
    rows = state::store::open(tmp.state(), state::store::access::read_only).thread_count();
    if (rows == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(rows == 0);
  CHECK(answer(c, "anyone?", "brief") == "1");
}

TEST_CASE("loom serve --state refuses a DIR that holds a run's state" * doctest::timeout(60)) {
  scratch tmp;
  counting_model model;
  { state::store::create(tmp.state()).set_meta("graph_path", "/somewhere/run.yaml"); }  // as `loom run --state` makes it
  std::optional<std::string> error;
  try {
    test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
  } catch (const std::exception& e) {
    error = e.what();
  }
  REQUIRE(error.has_value());
  CHECK(error->find("exited with status 2") != std::string::npos);
  CHECK(error->find("holds a run's state (loom run --state), not loom serve's threads") != std::string::npos);
}

TEST_CASE("a stopped server's DIR: loom runs counts its threads, loom resume refuses it (no run to resume)" *
          doctest::timeout(60)) {
  scratch tmp;
  counting_model model;
  {
    test::serve_process s{"tests/serve/thread_agent.yaml", serve_args(model, tmp)};
    httplib::Client c{s.host(), s.port()};
    CHECK(answer(c, "hi", "one") == "1");
  }
  auto runs = test::run_process({test::loom_binary(), "runs", tmp.state().string()});
  REQUIRE_MESSAGE(runs.status == 0, runs.err);
  CHECK(runs.out.find("status:    not served now") != std::string::npos);
  CHECK(runs.out.find("threads:   1") != std::string::npos);
  auto resume = test::run_process({test::loom_binary(), "resume", tmp.state().string()});
  CHECK(resume.status == 2);
  CHECK(resume.err.find("holds loom serve's threads (loom serve --state), not a run: there is nothing to resume") !=
        std::string::npos);
}
