// tests/serve/serve_test.cpp: `loom serve`. First its parts without a socket (request parsing, answer text,
// choosing and rewriting the input and output nodes), then the real binary serving configs/serve_echo.yaml
// and tests/serve/slow.yaml to httplib clients: completions whole and streamed, concurrent requests,
// malformed requests, the concurrency limit, unknown paths and a clean stop on SIGTERM.
#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "loom/actors/builtins.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/serve/capture.hpp"
#include "loom/runtime/serve/openai.hpp"
#include "loom/runtime/serve/served_graph.hpp"
#include "tests/cli/process.hpp"
#include "tests/serve/serve_process.hpp"

namespace {

using nlohmann::json;
using namespace loom;
using namespace std::chrono_literals;

serve::chat_request parse_ok(const json& body) {
  auto r = serve::parse_chat_request(body.dump());
  REQUIRE(std::holds_alternative<serve::chat_request>(r));
  return std::get<serve::chat_request>(r);
}

serve::request_error parse_bad(const std::string& body) {
  auto r = serve::parse_chat_request(body);
  REQUIRE(std::holds_alternative<serve::request_error>(r));
  return std::get<serve::request_error>(r);
}

json user(const json& content) { return {{"role", "user"}, {"content", content}}; }

graph::graph load_config(const std::string& path, const registry& kinds) {
  graph::diagnostics diags;
  auto g = graph::load_graph_file(std::string(LOOM_SOURCE_DIR) + "/" + path, diags);
  REQUIRE(g);
  graph::validate(*g, kinds, diags);
  REQUIRE_MESSAGE(!diags.has_errors(), diags.str());
  graph::apply_defaults(*g, kinds);
  return *g;
}

registry serving_kinds() {
  registry r;
  actors::register_builtins(r);
  auto table = std::make_shared<serve::slot_table>(1);
  r.add(serve::input_kind(table));
  r.add(serve::capture_kind(table));
  r.add(serve::stream_capture_kind(table));
  return r;
}

httplib::Result post(httplib::Client& c, const json& body) {
  return c.Post("/v1/chat/completions", body.dump(), "application/json");
}

json chat(const std::string& text, bool stream = false) {
  return {{"model", "serve_echo"}, {"messages", json::array({user(text)})}, {"stream", stream}};
}

// The JSON of each `data:` event of a Server-Sent Events body; [DONE] as the string "[DONE]".
std::vector<json> sse_events(const std::string& body) {
  std::vector<json> events;
  std::size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    auto end = body.find("\n\n", at);
    auto data = body.substr(at + 6, end - at - 6);
    events.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
    at = end;
  }
  return events;
}

void check_error_body(const httplib::Response& r, int status, const std::string& type) {
  CHECK(r.status == status);
  CHECK(r.get_header_value("Content-Type") == "application/json; charset=utf-8");
  auto j = json::parse(r.body);
  REQUIRE(j.contains("error"));
  CHECK(j["error"]["type"] == type);
  CHECK(j["error"]["message"].is_string());
  CHECK(!j["error"]["message"].get<std::string>().empty());
  CHECK(j["error"].contains("param"));
  CHECK(j["error"]["code"].is_null());
}

void check_error_body(const httplib::Result& r, int status, const std::string& type) {
  REQUIRE(r);
  check_error_body(*r, status, type);
}

}  // namespace

// -- the parts ------------------------------------------------------------------------------------------

TEST_CASE("the last user message is the prompt; text parts are joined" * doctest::timeout(10)) {
  auto r = parse_ok({{"model", "m"},
                     {"messages", json::array({{{"role", "system"}, {"content", "be brief"}}, user("first one"),
                                               {{"role", "assistant"}, {"content", nullptr}},
                                               user(json::array({{{"type", "text"}, {"text", "second"}},
                                                                 {{"type", "image_url"}, {"image_url", "x"}},
                                                                 {{"type", "text"}, {"text", "part"}}}))})}});
  CHECK(r.prompt == "second\npart");
  CHECK_FALSE(r.stream);
  CHECK(r.prompt_tokens == 6);  // be brief / first one / second part
  CHECK(parse_ok({{"messages", json::array({user("x")})}, {"stream", true}}).stream);
}

TEST_CASE("malformed chat requests are errors that name the field" * doctest::timeout(10)) {
  CHECK(parse_bad("{bad").message == "the request body is not valid JSON");
  CHECK(parse_bad("[1]").message.find("must be a JSON object") != std::string::npos);
  CHECK(parse_bad(R"({"model": "m"})").param == "messages");
  CHECK(parse_bad(R"({"messages": "oops"})").param == "messages");
  CHECK(parse_bad(R"({"messages": []})").message == "`messages` must not be empty");
  CHECK(parse_bad(R"({"messages": [{"role": "system", "content": "x"}]})").message.find("role `user`") !=
        std::string::npos);
  CHECK(parse_bad(R"({"messages": [7]})").param == "messages[0]");
  CHECK(parse_bad(R"({"messages": [{"content": "x"}]})").param == "messages[0].role");
  CHECK(parse_bad(R"({"messages": [{"role": "user", "content": 5}]})").param == "messages[0].content");
  CHECK(parse_bad(R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})").param ==
        "messages[0].content[0].text");
  CHECK(parse_bad(R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})").param == "stream");
  CHECK(parse_bad(R"({"model": 3, "messages": [{"role": "user", "content": "x"}]})").param == "model");
  CHECK(parse_bad("{bad").status == 400);
}

TEST_CASE("an answer is each value's text: an agent's `text` field, or the value as text" * doctest::timeout(10)) {
  CHECK(serve::answer_text(value("plain")) == "plain");
  CHECK(serve::answer_text(value(42)) == "42");
  CHECK(serve::answer_text(value(value_map{{"agent", "a"}, {"text", "the reply"}})) == "the reply");
  CHECK(serve::answer_text(value(value_map{{"n", 1}})) == R"({"n":1})");
  CHECK(serve::count_tokens("  two\twords \n") == 2);
  CHECK(serve::count_tokens("") == 0);
}

TEST_CASE("the only source and sink are the input and output; the rewritten graph runs the prompt" *
          doctest::timeout(10)) {
  auto kinds = serving_kinds();
  serve::served_graph s{load_config("configs/serve_echo.yaml", kinds), kinds, {}};
  CHECK(s.name() == "serve_echo");
  CHECK(s.input() == "prompt");
  CHECK(s.output() == "reply");
  auto g = s.instantiate(7, false);
  CHECK(g.find("prompt")->kind == serve::input_kind_name);
  CHECK(*g.find("prompt")->params.find("slot") == graph::config(7));
  CHECK(g.find("reply")->kind == serve::capture_kind_name);
  CHECK(*g.find("reply")->params.find("slot") == graph::config(7));
  CHECK(s.instantiate(3, true).find("reply")->kind == serve::stream_capture_kind_name);
}

namespace {
// Fails its first value, after `delay_ms`.
class fail_later final : public node {
 public:
  explicit fail_later(std::int64_t ms) : ms_(ms) {}
  void on_message(context&, std::size_t, const value&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
    throw std::runtime_error("failing on purpose");
  }

 private:
  std::int64_t ms_;
};
}  // namespace

TEST_CASE("a stopped run ends a streaming capture's wait for a client that does not read (its stop hook)" *
          doctest::timeout(30)) {
  registry kinds;
  actors::register_builtins(kinds);
  auto table = std::make_shared<serve::slot_table>(1);
  kinds.add(serve::stream_capture_kind(table));
  graph::kind_spec boom;
  boom.name = "test.fail_later";
  boom.doc = "fails its first value after 300 ms";
  boom.inputs = {{"in", "anything"}};
  kinds.add({boom, [](const node_init&) { return std::make_unique<fail_later>(300); }});
  // Room for one text, and no client reading: the capture waits at its second value, on its own thread.
  auto channel = std::make_shared<serve::output_channel>(serve::output_channel::mode::stream, 1);
  table->set(0, {"prompt", channel});
  graph::builder b("stuck-capture");
  b.node("src", "source.sequence").param("count", 100);
  b.node("reply", serve::stream_capture_kind_name).param("slot", 0);
  b.node("one", "source.value").param("value", 1);
  b.node("boom", "test.fail_later");
  b.chain({"src", "reply"});
  b.chain({"one", "boom"});
  auto g = b.build();
  graph::diagnostics d;
  graph::validate(g, kinds, d);
  REQUIRE_MESSAGE(!d.has_errors(), d.str());
  graph::apply_defaults(g, kinds);
  caf::actor_system_config cfg;
  caf::actor_system system{cfg};
  auto started = std::chrono::steady_clock::now();
  auto run = std::async(std::launch::async, [&] { return local::run_graph(system, g, kinds, {}); });
  bool ended = run.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!ended) channel->abandon();  // the client leaves: lets the run end, so the test can fail
  auto report = run.get();
  CHECK(ended);  // the failure stopped the run; the capture did not wait for the client
  CHECK(report.result == local::run_report::outcome::failed);
  CHECK(report.error.find("failing on purpose") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

TEST_CASE("a graph without one source or one sink needs --input/--output, and the error names the candidates" *
          doctest::timeout(10)) {
  auto kinds = serving_kinds();
  auto g = load_config("configs/fanout.yaml", kinds);
  auto message = [&](const serve::endpoints& e) {
    try {
      serve::served_graph{g, kinds, e};
    } catch (const serve::setup_error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  CHECK(message({}) == "graph `fanout` has 2 source nodes (greeting, numbers); choose one with --input NODE");
  CHECK(message({"greeting", ""}) == "graph `fanout` has 2 sink nodes (tally, print); choose one with --output NODE");
  CHECK(message({"greting", "print"}).find("did you mean `greeting`?") != std::string::npos);
  CHECK(message({"greeting", "shout"}).find("has an outgoing edge (shout -> print)") != std::string::npos);
  CHECK(message({"shout", "print"}).find("has an incoming edge (greeting -> shout)") != std::string::npos);
  CHECK(message({"greeting", "tally"}) == "no error");
}

// -- the real server --------------------------------------------------------------------------------------

TEST_CASE("loom serve exits 2 naming the candidates when the graph has no single source" * doctest::timeout(30)) {
  auto r = test::run_process({test::loom_binary(), "serve", std::string(LOOM_SOURCE_DIR) + "/configs/fanout.yaml",
                              "--port", std::to_string(test::free_port())});
  CHECK(r.status == 2);
  CHECK(r.err.find("2 source nodes (greeting, numbers); choose one with --input NODE") != std::string::npos);
}

TEST_CASE("a chat completion answers with the user's text" * doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  httplib::Client c{s.host(), s.port()};
  auto r = post(c, {{"model", "serve_echo"},
                    {"messages", json::array({{{"role", "system"}, {"content", "echo"}}, user("hello loom server")})}});
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body);
  auto j = json::parse(r->body);
  CHECK(j["object"] == "chat.completion");
  CHECK(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  CHECK(j["model"] == "serve_echo");
  CHECK(j["created"].is_number_integer());
  CHECK(j["choices"][0]["index"] == 0);
  CHECK(j["choices"][0]["message"]["role"] == "assistant");
  CHECK(j["choices"][0]["message"]["content"] == "hello loom server");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["usage"]["prompt_tokens"] == 4);
  CHECK(j["usage"]["completion_tokens"] == 3);
  CHECK(j["usage"]["total_tokens"] == 7);
  auto again = post(c, chat("second request"));
  REQUIRE(again);
  CHECK(json::parse(again->body)["id"] != j["id"]);
}

TEST_CASE("a streamed completion sends a role chunk, content chunks, a stop chunk and [DONE]" *
          doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  httplib::Client c{s.host(), s.port()};
  auto r = post(c, chat("stream me", true));
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body);
  CHECK(r->get_header_value("Content-Type") == "text/event-stream");
  auto events = sse_events(r->body);
  REQUIRE(events.size() == 4);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(events[i]["object"] == "chat.completion.chunk");
    CHECK(events[i]["id"] == events[0]["id"]);
  }
  CHECK(events[0]["choices"][0]["delta"] == json{{"role", "assistant"}});
  CHECK(events[0]["choices"][0]["finish_reason"].is_null());
  CHECK(events[1]["choices"][0]["delta"] == json{{"content", "stream me"}});
  CHECK(events[2]["choices"][0]["delta"] == json::object());
  CHECK(events[2]["choices"][0]["finish_reason"] == "stop");
  CHECK(events[3] == "[DONE]");
}

TEST_CASE("streamed values reach the client as the graph emits them, not at the end of the run" *
          doctest::timeout(60)) {
  test::serve_process s{"tests/serve/slow.yaml", {"--input", "prompt"}};
  httplib::Client c{s.host(), s.port()};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = chat("tick tock", true).dump();
  req.set_header("Content-Type", "application/json");
  std::string body;
  std::vector<std::pair<std::size_t, std::chrono::steady_clock::time_point>> arrivals;  // events so far, when
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    body.append(data, n);
    arrivals.emplace_back(sse_events(body).size(), std::chrono::steady_clock::now());
    return true;
  };
  auto r = c.send(req);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto events = sse_events(body);
  REQUIRE(events.size() == 8);  // role, the prompt, 4 ticks, stop, [DONE]
  // The prompt and the ticks come from two sources: each in its order, the two interleaved as they arrive.
  std::vector<std::string> ticks;
  bool prompt_seen = false;
  for (std::size_t i = 1; i < 6; ++i) {
    std::string content = events[i]["choices"][0]["delta"]["content"];
    if (content == "tick tock") prompt_seen = true;
    else ticks.push_back(content);
  }
  CHECK(prompt_seen);
  CHECK(ticks == std::vector<std::string>{"0", "1", "2", "3"});
  // The ticks are paced 200 ms apart: the first content must have arrived well before the last.
  auto first_content = std::find_if(arrivals.begin(), arrivals.end(), [](auto& a) { return a.first >= 2; });
  REQUIRE(first_content != arrivals.end());
  CHECK(arrivals.back().second - first_content->second > 300ms);
}

TEST_CASE("eight concurrent requests each get their own answer" * doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  constexpr int n = 8;
  std::vector<std::string> answers(n);
  std::vector<int> statuses(n, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      httplib::Client c{s.host(), s.port()};
      auto r = post(c, chat("request number " + std::to_string(i), i % 2 == 1));
      if (!r) return;
      statuses[i] = r->status;
      if (i % 2 == 0) answers[i] = json::parse(r->body)["choices"][0]["message"]["content"];
      else answers[i] = sse_events(r->body).at(1)["choices"][0]["delta"]["content"];
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < n; ++i) {
    CHECK(statuses[i] == 200);
    CHECK(answers[i] == "request number " + std::to_string(i));
  }
}

TEST_CASE("malformed requests get 400 with an OpenAI-style JSON error" * doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  httplib::Client c{s.host(), s.port()};
  for (const std::string body : {"{not json", R"({"model": "serve_echo"})", R"({"messages": "oops"})",
                                 R"({"messages": []})", R"({"messages": [{"role": "system", "content": "x"}]})",
                                 R"({"messages": [{"role": "user", "content": 5}]})",
                                 R"({"messages": [{"role": "user", "content": "x"}], "stream": 1})"}) {
    CAPTURE(body);
    check_error_body(c.Post("/v1/chat/completions", body, "application/json"), 400, "invalid_request_error");
  }
  auto r = c.Post("/v1/chat/completions", R"({"messages": "oops"})", "application/json");
  REQUIRE(r);
  CHECK(json::parse(r->body)["error"]["param"] == "messages");
  // The server still answers after them.
  auto ok = post(c, chat("still here"));
  REQUIRE(ok);
  CHECK(ok->status == 200);
}

TEST_CASE("/health and /v1/models describe the served graph; unknown paths are 404 JSON errors" *
          doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  httplib::Client c{s.host(), s.port()};
  auto health = c.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(json::parse(health->body) == json{{"status", "ok"}, {"graph", "serve_echo"}});
  auto models = c.Get("/v1/models");
  REQUIRE(models);
  CHECK(models->status == 200);
  auto m = json::parse(models->body);
  CHECK(m["object"] == "list");
  REQUIRE(m["data"].size() == 1);
  CHECK(m["data"][0]["id"] == "serve_echo");
  CHECK(m["data"][0]["object"] == "model");
  CHECK(m["data"][0]["owned_by"] == "loom");
  CHECK(m["data"][0]["created"].is_number_integer());
  auto one = c.Get("/v1/models/serve_echo");
  REQUIRE(one);
  CHECK(json::parse(one->body)["id"] == "serve_echo");
  check_error_body(c.Get("/v1/models/gpt-4"), 404, "invalid_request_error");
  check_error_body(c.Get("/nowhere"), 404, "invalid_request_error");
  check_error_body(c.Get("/v1/chat/completions"), 404, "invalid_request_error");
}

TEST_CASE("a failed run is a 500 whose message is the run's error" * doctest::timeout(60)) {
  // fanout's `tally` expects three greetings; served with `greeting` as the input it gets one and fails.
  test::serve_process s{"configs/fanout.yaml", {"--input", "greeting", "--output", "print"}};
  httplib::Client c{s.host(), s.port()};
  auto r = post(c, chat("one greeting"));
  check_error_body(r, 500, "server_error");
  CHECK(json::parse(r->body)["error"]["message"].get<std::string>().find("expected 3 messages, got 1") !=
        std::string::npos);
}

TEST_CASE("requests beyond --max-concurrent get 429; the rest are answered" * doctest::timeout(60)) {
  test::serve_process s{"tests/serve/slow.yaml", {"--input", "prompt", "--max-concurrent", "1"}};
  constexpr int n = 4;
  std::vector<std::optional<httplib::Response>> results(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] {
      httplib::Client c{s.host(), s.port()};
      if (auto r = post(c, chat("busy?"))) results[i] = *r;
    });
  for (auto& t : clients) t.join();
  int answered = 0, refused = 0;
  for (auto& r : results) {
    REQUIRE(r);
    if (r->status == 200) ++answered;
    if (r->status == 429) {
      ++refused;
      check_error_body(*r, 429, "rate_limit_error");
    }
  }
  CHECK(answered >= 1);
  CHECK(refused >= 1);
  CHECK(answered + refused == n);
}

TEST_CASE("SIGTERM lets an in-flight streamed request finish, then loom serve exits 0" * doctest::timeout(60)) {
  test::serve_process s{"tests/serve/slow.yaml", {"--input", "prompt"}};
  httplib::Client c{s.host(), s.port()};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = chat("finish me", true).dump();
  req.set_header("Content-Type", "application/json");
  std::string body;
  bool signalled = false;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    body.append(data, n);
    if (!signalled) s.signal(SIGTERM);  // the response has begun: the run is in flight
    signalled = true;
    return true;
  };
  auto r = c.send(req);
  REQUIRE(r);
  CHECK(r->status == 200);
  auto events = sse_events(body);
  REQUIRE(!events.empty());
  CHECK(events.back() == "[DONE]");
  CHECK(events.size() == 8);
  auto status = s.wait(5s);
  REQUIRE_MESSAGE(status, s.err());
  CHECK(*status == 0);
  CHECK(s.err().find("stopped serving `serve_slow`") != std::string::npos);
}

TEST_CASE("SIGINT stops an idle server at once with exit 0" * doctest::timeout(60)) {
  test::serve_process s{"configs/serve_echo.yaml"};
  auto t0 = std::chrono::steady_clock::now();
  s.signal(SIGINT);
  auto status = s.wait(5s);
  REQUIRE_MESSAGE(status, s.err());
  CHECK(*status == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);
}

TEST_CASE("the flagship is served from another working folder: its paths resolve against its own folder" *
          doctest::timeout(60)) {
  // serve_process runs `loom serve SOURCE_DIR/configs/food_truck.yaml` from the test's working folder (the
  // build tree), so the retriever's corpus `data/food_truck` must be found next to the graph file.
  test::serve_process s{"configs/food_truck.yaml"};
  httplib::Client c{s.host(), s.port()};
  c.set_read_timeout(30, 0);
  auto r = post(c, chat("Help me start a food truck in Lyon"));
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 200, r->body, s.err());
  auto text = json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
  CHECK(text.find("# Food truck launch package") == 0);
  CHECK(text.find("(source: menu.md)") != std::string::npos);  // a passage the retriever found in its corpus
}
