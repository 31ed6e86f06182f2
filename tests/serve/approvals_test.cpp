// tests/serve/approvals_test.cpp: decisions over `loom serve`'s HTTP API (docs/serve.md, "Approvals") on the
// real binary over 127.0.0.1. The served graph (tests/serve/approve.yaml) holds each request's message at
// human.approve: the request stays open while GET /v1/threads/{thread}/approvals lists the decision, and a
// POST there approves, edits or rejects it; a streamed request says it waits (an SSE comment line); a client
// that leaves takes its decisions off the list; --approval-timeout and the node's own timeout_s end a wait.
#include "loom/runtime/serve/approvals.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/http/decision_body.hpp"
#include "loom/runtime/local/executor.hpp"
#include "tests/cli/process.hpp"
#include "tests/serve/serve_process.hpp"
#include "tests/support/raw_socket.hpp"

namespace {

using nlohmann::json;
using namespace loom;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* graph_file = "tests/serve/approve.yaml";

struct scratch {
  fs::path root;
  scratch() {
    std::string tmpl = (fs::temp_directory_path() / "loom_approvals_test.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  std::vector<std::string> args(std::vector<std::string> more = {}) const {
    std::vector<std::string> a{"--state", (root / "state").string()};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
};

json chat(const std::string& text, bool stream = false) {
  return {{"model", "approve_reply"},
          {"messages", json::array({{{"role", "user"}, {"content", text}}})},
          {"stream", stream}};
}

httplib::Headers thread_header(const std::string& thread) {
  httplib::Headers h;
  if (!thread.empty()) h.emplace("X-Loom-Thread", thread);
  return h;
}

// A whole completion sent on a thread of its own: the request blocks until someone decides.
std::future<httplib::Result> ask_async(const test::serve_process& s, const std::string& text,
                                       const std::string& thread) {
  return std::async(std::launch::async, [host = s.host(), port = s.port(), text, thread] {
    httplib::Client c{host, port};
    c.set_read_timeout(120s);
    return c.Post("/v1/chat/completions", thread_header(thread), chat(text).dump(), "application/json");
  });
}

json get_json(httplib::Client& c, const std::string& path) {
  auto r = c.Get(path.c_str());
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body);
  return json::parse(r->body);
}

// Polls GET `path` (deadline 60 s) until its list has `n` entries; returns the list.
json wait_listed(httplib::Client& c, const std::string& path, std::size_t n) {
  auto until = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto list = get_json(c, path)["data"];
    if (list.size() == n) return list;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < until,
                    "waited 60 s for " << n << " decisions at " << path << "; the list is " << list.dump());
    std::this_thread::sleep_for(20ms);
  }
}

httplib::Result decide(httplib::Client& c, const std::string& thread, const json& body) {
  return c.Post(("/v1/threads/" + thread + "/approvals").c_str(), body.dump(), "application/json");
}

std::string content_of(const httplib::Result& r) {
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body);
  return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
}

std::string error_of(const httplib::Result& r) {
  REQUIRE(r);
  return json::parse(r->body)["error"]["message"].get<std::string>();
}

// The served graph expanded (no server): the boards name instances through it.
std::shared_ptr<const local::deployment> approve_plan() {
  registry kinds;
  actors::register_builtins(kinds);
  graph::diagnostics diags;
  auto g = graph::load_graph_file(std::string(LOOM_SOURCE_DIR) + "/" + graph_file, diags);
  REQUIRE(g);
  graph::validate(*g, kinds, diags);
  REQUIRE_MESSAGE(!diags.has_errors(), diags.str());
  graph::apply_defaults(*g, kinds);
  return std::make_shared<const local::deployment>(local::expand(*g, kinds));
}

std::uint32_t instance_of(const local::deployment& d, const std::string& name) {
  for (std::uint32_t i = 0; i < d.instances.size(); ++i)
    if (local::instance_name(d, i) == name) return i;
  FAIL("no instance " << name);
  return 0;
}

// A snapshot whose only part is `instance`'s, pending `ids` (shown: "value N").
local::snapshot pending_at(std::uint32_t instance, std::size_t instances, std::vector<std::uint64_t> ids) {
  local::snapshot s;
  s.parts.resize(instances);
  auto part = std::make_shared<local::instance_part>();
  part->instance = instance;
  for (auto id : ids)
    part->pending.push_back(
        {id, value("value " + std::to_string(id)), 1000 + static_cast<std::int64_t>(id), 0});
  s.parts[instance] = part;
  return s;
}

http::decision_body body_of(const std::string& text) {
  auto r = http::parse_decision_body(text);
  if (auto* e = std::get_if<std::string>(&r)) FAIL("refused: " << *e);
  return std::get<http::decision_body>(r);
}

std::string refusal_of(const std::string& text) {
  auto r = http::parse_decision_body(text);
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

}  // namespace

TEST_CASE("a decision's body: node or instance, an approval with a value is an edit, and what is refused" *
          doctest::timeout(10)) {
  auto a = body_of(R"({"node": "review", "id": 3, "verdict": "approve"})");
  CHECK(a.node == "review");
  CHECK_FALSE(a.instance);
  CHECK(a.id == 3);
  CHECK(a.verdict == "approve");
  CHECK_FALSE(a.value_json);
  auto e = body_of(R"({"instance": 1, "id": 0, "verdict": "approve", "value": {"x": [1, 2]}})");
  CHECK(e.instance == 1u);
  CHECK(e.verdict == "edit");
  CHECK(e.value_json == R"({"x":[1,2]})");
  auto r = body_of(R"({"node": "review", "id": 0, "verdict": "reject", "reason": "no"})");
  CHECK(r.reason == "no");
  CHECK(refusal_of(R"({"node": "review", "id": 0, "verdict": "maybe"})") ==
        "verdict: `maybe` is none of approve, reject, edit");
  CHECK(refusal_of(R"({"node": "review", "id": 0, "verdict": "edit"})") == "an edit needs `value`");
  CHECK(refusal_of(R"({"node": "review", "id": 0, "verdict": "reject", "value": 1})")
            .find("a rejection takes no") == 0);
  CHECK(refusal_of(R"({"id": 0, "verdict": "approve"})").find("name the decision's node") == 0);
  CHECK(refusal_of(R"({"node": "review", "id": -1, "verdict": "approve"})").find("id: ") == 0);
  CHECK(refusal_of(R"({"node": "review", "id": 0, "verdict": "approve", "reason": 5})") ==
        "reason: not a string");
  CHECK(refusal_of("[1]").find("a decision is {") == 0);
  CHECK(refusal_of("{nope").find("the decision") != std::string::npos);
  CHECK(refusal_of(std::string(100, '[') + std::string(100, ']')).find("nested deeper than 64") !=
        std::string::npos);
}

TEST_CASE(
    "a request's board: pending from snapshots, a decision handed to the run once, given twice refused" *
    doctest::timeout(10)) {
  auto plan = approve_plan();
  auto review = instance_of(*plan, "review");
  auto n = plan->instances.size();
  serve::approval_boards boards;
  auto board = boards.open("t", plan);
  CHECK(boards.pending("t").empty());
  CHECK(boards.decide("t", body_of(R"({"node": "review", "id": 0, "verdict": "approve"})"), "me").status ==
        404);
  CHECK(boards.decide("u", body_of(R"({"node": "review", "id": 0, "verdict": "approve"})"), "me").status ==
        404);

  board->update(pending_at(review, n, {0, 1}));
  auto list = boards.pending("t");
  REQUIRE(list.size() == 2);
  CHECK(list[0].node == "review");
  CHECK(list[0].instance == review);
  CHECK(list[0].shown == value("value 0"));
  CHECK(boards.pending("").size() == 2);
  CHECK(boards.pending("u").empty());

  auto not_pending =
      boards.decide("t", body_of(R"({"node": "review", "id": 7, "verdict": "approve"})"), "me");
  CHECK(not_pending.status == 409);
  CHECK(not_pending.message ==
        "`review` has no pending decision 7 in thread `t` (pending: `review` (ids 0, 1))");
  CHECK(board->take().empty());

  auto ok =
      boards.decide("t", body_of(R"({"node": "review", "id": 1, "verdict": "approve", "value": "v"})"), "me");
  CHECK(ok.status == 200);
  auto taken = board->take();
  REQUIRE(taken.size() == 1);  // once
  CHECK(taken[0].instance == review);
  CHECK(taken[0].id == 1);
  CHECK(taken[0].d.what == decision::verdict::edit);
  CHECK(taken[0].d.edited == value("v"));
  CHECK(taken[0].d.by == "me");
  CHECK(board->take().empty());
  // Given: no longer listed, and refused again, while the run's snapshots still hold it pending.
  REQUIRE(boards.pending("t").size() == 1);
  board->update(pending_at(review, n, {0, 1}));
  auto twice = boards.decide("t", body_of(R"({"node": "review", "id": 1, "verdict": "reject"})"), "you");
  CHECK(twice.status == 409);
  CHECK(twice.message ==
        "decision 1 of `review` in thread `t` was already given (edit by me); the run takes it when "
        "it goes on");
  CHECK(board->take().empty());

  // The run took it; then the run ended: nothing is listed, and the decision given is still known.
  board->update(pending_at(review, n, {0}));
  CHECK(boards.decide("t", body_of(R"({"node": "review", "id": 1, "verdict": "approve"})"), "you").message ==
        "decision 1 of `review` in thread `t` was already given (edit by me); the run takes it when it goes "
        "on");
  boards.close(board);
  CHECK(boards.pending("t").empty());
  CHECK(boards.decide("t", body_of(R"({"node": "review", "id": 1, "verdict": "approve"})"), "you").status ==
        409);
  CHECK(boards.decide("t", body_of(R"({"node": "review", "id": 0, "verdict": "approve"})"), "you").status ==
        404);
}

TEST_CASE("a streamed request's comments: each new decision once, then the oldest every keep-alive" *
          doctest::timeout(10)) {
  auto plan = approve_plan();
  auto review = instance_of(*plan, "review");
  serve::approval_board board{"t", plan};
  auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(board.comment(t0, 15s));
  board.update(pending_at(review, plan->instances.size(), {4}));
  CHECK(board.comment(t0, 15s) == ": waiting for approval: node review id 4\n\n");
  CHECK_FALSE(board.comment(t0 + 1s, 15s));
  board.update(pending_at(review, plan->instances.size(), {4, 5}));
  CHECK(board.comment(t0 + 2s, 15s) == ": waiting for approval: node review id 5\n\n");
  CHECK_FALSE(board.comment(t0 + 3s, 15s));
  CHECK(board.comment(t0 + 18s, 15s) == ": waiting for approval: node review id 4\n\n");
  board.update(pending_at(review, plan->instances.size(), {}));
  CHECK_FALSE(board.comment(t0 + 60s, 15s));
}

TEST_CASE("loom serve refuses a graph with human.approve and no --state, naming the file, line and node" *
          doctest::timeout(30)) {
  auto r = test::run_process({test::loom_binary(), "serve", std::string(LOOM_SOURCE_DIR) + "/" + graph_file,
                              "--port", std::to_string(test::free_port())});
  CHECK(r.status == 2);
  CHECK(r.err.find("approve.yaml:9:") != std::string::npos);
  CHECK(r.err.find("node `review` (human.approve) waits for decisions") != std::string::npos);
  CHECK(r.err.find("--state DIR") != std::string::npos);
}

TEST_CASE("a request waits for its decision: listed with what is shown, approved once, refused twice" *
          doctest::timeout(120)) {
  scratch tmp;
  test::serve_process s{graph_file, tmp.args()};
  httplib::Client c{s.host(), s.port()};
  auto a = ask_async(s, "hello approvals", "t1");
  auto list = wait_listed(c, "/v1/threads/t1/approvals", 1);
  CHECK(list[0]["thread"] == "t1");
  CHECK(list[0]["node"] == "review");
  CHECK(list[0]["id"] == 0);
  CHECK(list[0]["shown"] == "hello approvals");
  CHECK(list[0]["asked_unix_ms"].get<std::int64_t>() > 0);
  CHECK_FALSE(list[0].contains("deadline_unix_ms"));
  // Every thread's: the same one, with its thread.
  auto all = get_json(c, "/v1/approvals")["data"];
  REQUIRE(all.size() == 1);
  CHECK(all[0]["thread"] == "t1");
  CHECK(get_json(c, "/v1/threads/t2/approvals")["data"].empty());
  // The request is still open.
  CHECK(a.wait_for(0s) == std::future_status::timeout);

  // What is refused records nothing.
  auto bad_json = c.Post("/v1/threads/t1/approvals", "{nope", "application/json");
  REQUIRE(bad_json);
  CHECK(bad_json->status == 400);
  auto bad_verdict = decide(c, "t1", {{"node", "review"}, {"id", 0}, {"verdict", "maybe"}});
  REQUIRE(bad_verdict);
  CHECK(bad_verdict->status == 400);
  CHECK(error_of(bad_verdict).find("none of approve, reject, edit") != std::string::npos);
  {
    // A body past --max-body (1 MiB) is refused from its Content-Length, before it is sent.
    int fd = test::connect_loopback(s.port());
    test::send_all(
        fd,
        "POST /v1/threads/t1/approvals HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 2097152\r\n\r\n{");
    auto head = test::read_head(fd);
    ::close(fd);
    CHECK(head.rfind("HTTP/1.1 413", 0) == 0);
  }
  auto no_id = decide(c, "t1", {{"node", "review"}, {"verdict", "approve"}});
  REQUIRE(no_id);
  CHECK(no_id->status == 400);
  auto unknown_thread = decide(c, "nobody", {{"node", "review"}, {"id", 0}, {"verdict", "approve"}});
  REQUIRE(unknown_thread);
  CHECK(unknown_thread->status == 404);
  CHECK(error_of(unknown_thread).find("thread `nobody` has no decision pending") != std::string::npos);
  auto not_pending = decide(c, "t1", {{"node", "review"}, {"id", 7}, {"verdict", "approve"}});
  REQUIRE(not_pending);
  CHECK(not_pending->status == 409);
  CHECK(error_of(not_pending)
            .find("`review` has no pending decision 7 in thread `t1` (pending: `review` (id 0))") !=
        std::string::npos);
  CHECK(wait_listed(c, "/v1/threads/t1/approvals", 1)[0]["id"] == 0);

  auto ok = decide(c, "t1", {{"node", "review"}, {"id", 0}, {"verdict", "approve"}});
  REQUIRE(ok);
  CHECK_MESSAGE(ok->status == 200, ok->body);
  auto twice = decide(c, "t1", {{"node", "review"}, {"id", 0}, {"verdict", "reject"}});
  REQUIRE(twice);
  CHECK(twice->status == 409);
  CHECK(
      error_of(twice).find("decision 0 of `review` in thread `t1` was already given (approve by 127.0.0.1") !=
      std::string::npos);

  auto r = a.get();
  CHECK(content_of(r) == "hello approvals");
  CHECK(r->get_header_value("X-Loom-Thread") == "t1");
  CHECK(get_json(c, "/v1/threads/t1/approvals")["data"].empty());
}

TEST_CASE(
    "a rejection answers with {value, reason, by}; an edit with the edited value; a request without a "
    "thread is found under its own id" *
    doctest::timeout(120)) {
  scratch tmp;
  test::serve_process s{graph_file, tmp.args()};
  httplib::Client c{s.host(), s.port()};

  auto a = ask_async(s, "delete everything", "t2");
  wait_listed(c, "/v1/threads/t2/approvals", 1);
  auto no = decide(c, "t2", {{"node", "review"}, {"id", 0}, {"verdict", "reject"}, {"reason", "too risky"}});
  REQUIRE(no);
  CHECK_MESSAGE(no->status == 200, no->body);
  auto rejected = json::parse(content_of(a.get()));
  CHECK(rejected["value"] == "delete everything");
  CHECK(rejected["reason"] == "too risky");
  CHECK(rejected["by"].get<std::string>().find("(loom serve)") != std::string::npos);

  // The thread's next request asks again under the same id: a decision of its own.
  auto b = ask_async(s, "draft", "t2");
  wait_listed(c, "/v1/threads/t2/approvals", 1);
  auto edit = decide(c, "t2", {{"node", "review"}, {"id", 0}, {"verdict", "approve"}, {"value", "final"}});
  REQUIRE(edit);
  CHECK_MESSAGE(edit->status == 200, edit->body);
  CHECK(content_of(b.get()) == "final");

  // No thread: the server names the request; the list says the name, and so does the answer's header.
  auto d = ask_async(s, "anonymous", "");
  auto all = wait_listed(c, "/v1/approvals", 1);
  auto name = all[0]["thread"].get<std::string>();
  CHECK(name.rfind("request-", 0) == 0);
  auto yes = decide(c, name, {{"node", "review"}, {"id", 0}, {"verdict", "approve"}});
  REQUIRE(yes);
  CHECK_MESSAGE(yes->status == 200, yes->body);
  auto r = d.get();
  CHECK(content_of(r) == "anonymous");
  CHECK(r->get_header_value("X-Loom-Thread") == name);
}

TEST_CASE("a streamed request that waits says so with an SSE comment before its answer" *
          doctest::timeout(120)) {
  scratch tmp;
  test::serve_process s{graph_file, tmp.args()};
  std::string body;
  std::mutex m;
  std::promise<void> waiting;
  bool told = false;
  auto streamed = std::async(std::launch::async, [&] {
    httplib::Client c{s.host(), s.port()};
    c.set_read_timeout(120s);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = chat("stream me", true).dump();
    req.set_header("Content-Type", "application/json");
    req.set_header("X-Loom-Thread", "t3");
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      std::lock_guard lock{m};
      body.append(data, n);
      if (!told && body.find(": waiting for approval: node review id 0\n\n") != std::string::npos) {
        told = true;
        waiting.set_value();
      }
      return true;
    };
    return c.send(req);
  });
  // The comment comes while the decision is pending: nothing has decided it yet.
  REQUIRE(waiting.get_future().wait_for(60s) == std::future_status::ready);
  httplib::Client c{s.host(), s.port()};
  CHECK(get_json(c, "/v1/threads/t3/approvals")["data"].size() == 1);
  auto ok = decide(c, "t3", {{"node", "review"}, {"id", 0}, {"verdict", "approve"}});
  REQUIRE(ok);
  CHECK_MESSAGE(ok->status == 200, ok->body);
  auto r = streamed.get();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("X-Loom-Thread") == "t3");
  std::lock_guard lock{m};
  auto comment = body.find(": waiting for approval: node review id 0");
  auto content = body.find(R"("content":"stream me")");
  REQUIRE(comment != std::string::npos);
  REQUIRE(content != std::string::npos);
  CHECK(comment < content);
  CHECK(body.find("data: [DONE]") != std::string::npos);
}

TEST_CASE("a client that leaves while its request waits takes its decision off the list" *
          doctest::timeout(120)) {
  scratch tmp;
  test::serve_process s{graph_file, tmp.args()};
  httplib::Client c{s.host(), s.port()};
  int fd = test::connect_loopback(s.port());
  auto body = chat("never mind").dump();
  test::send_all(fd,
                 "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Loom-Thread: t4\r\n"
                 "Content-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body);
  wait_listed(c, "/v1/threads/t4/approvals", 1);
  ::close(fd);
  wait_listed(c, "/v1/threads/t4/approvals", 0);  // the run was stopped and its board closed
  auto late = decide(c, "t4", {{"node", "review"}, {"id", 0}, {"verdict", "approve"}});
  REQUIRE(late);
  CHECK(late->status == 404);
  // The slot is free again: another request of the thread runs.
  auto a = ask_async(s, "again", "t4");
  wait_listed(c, "/v1/threads/t4/approvals", 1);
  auto ok = decide(c, "t4", {{"node", "review"}, {"id", 0}, {"verdict", "approve"}});
  REQUIRE(ok);
  CHECK(content_of(a.get()) == "again");
}

TEST_CASE("a wait ends at --approval-timeout (504 naming the node) and at the node's own timeout_s" *
          doctest::timeout(120)) {
  scratch tmp;
  {
    test::serve_process s{graph_file, tmp.args({"--approval-timeout", "300ms"})};
    httplib::Client c{s.host(), s.port()};
    c.set_read_timeout(60s);
    auto r = c.Post("/v1/chat/completions", thread_header("t5"), chat("too slow").dump(), "application/json");
    REQUIRE(r);
    CHECK(r->status == 504);
    CHECK(error_of(r).find("for a decision (node `review` id 0; --approval-timeout)") != std::string::npos);
    CHECK(get_json(c, "/v1/threads/t5/approvals")["data"].empty());
  }
  {
    test::serve_process s{graph_file, tmp.args({"--set", "review.timeout_s=0.3"})};
    httplib::Client c{s.host(), s.port()};
    c.set_read_timeout(60s);
    auto r =
        c.Post("/v1/chat/completions", thread_header("t6"), chat("nobody looks").dump(), "application/json");
    auto rejected = json::parse(content_of(r));
    CHECK(rejected["value"] == "nobody looks");
    CHECK(rejected["by"] == "timeout");
  }
}

TEST_CASE("an agent's approve_tools call waits for its decision over HTTP; an edit changes its arguments" *
          doctest::timeout(120)) {
  scratch tmp;
  test::serve_process s{"tests/serve/approve_agent.yaml", tmp.args()};
  httplib::Client c{s.host(), s.port()};
  auto a = ask_async(s, "what is 2 plus 2?", "ta");
  auto list = wait_listed(c, "/v1/threads/ta/approvals", 1);
  CHECK(list[0]["node"] == "agent");
  CHECK(list[0]["shown"]["tool"] == "calc");
  CHECK(list[0]["shown"]["arguments"]["expression"] == "6*7");
  auto edit = decide(
      c, "ta",
      {{"node", "agent"}, {"id", list[0]["id"]}, {"verdict", "edit"}, {"value", {{"expression", "2+2"}}}});
  REQUIRE(edit);
  CHECK_MESSAGE(edit->status == 200, edit->body);
  CHECK(content_of(a.get()) == R"(the answer: {"expression":"2+2","result":4})");

  // Rejected: the tool never runs, and the model reads why.
  auto b = ask_async(s, "again", "ta");
  list = wait_listed(c, "/v1/threads/ta/approvals", 1);
  auto no = decide(
      c, "ta", {{"node", "agent"}, {"id", list[0]["id"]}, {"verdict", "reject"}, {"reason", "not today"}});
  REQUIRE(no);
  CHECK_MESSAGE(no->status == 200, no->body);
  auto text = content_of(b.get());
  CHECK(text.find("the call was rejected by 127.0.0.1") != std::string::npos);
  CHECK(text.find("not today") != std::string::npos);
}
