// tests/observe/trace_test.cpp: tracing a run in one process. W3C traceparent parsing; `loom run --trace`
// writes a Chrome trace-event file with a track per instance, a span per handled batch (counts adding up to
// the values handled), call and tool spans with flow arrows between them; `loom run --otlp` exports the same
// run as one OTLP trace to a receiver written in Python, and the agent's model requests carry that trace's
// `traceparent` to a chat-completions server; nothing is sent when tracing is off; `loom serve --otlp` makes
// each request a trace under the request's own traceparent, exported off the request's path (a collector that
// never answers slows no completion; what it cannot take is dropped and counted).
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/trace.hpp"
#include "tests/cli/process.hpp"
#include "tests/observe/receiver.hpp"
#include "tests/serve/serve_process.hpp"

namespace fs = std::filesystem;
using loom::test::loom_binary;
using loom::test::run_process;
using loom::test::observe::attribute;
using loom::test::observe::count_roots;
using loom::test::observe::receiver;
using loom::test::observe::slurp;
using json = nlohmann::json;
namespace observe = loom::observe;

namespace {

// 300 numbers through two replicas into a counter, and an agent that calls a calculator once.
std::string graph_yaml(const std::string& agent_params) {
  return R"(graph: traced
nodes:
  numbers: {kind: source.sequence, params: {count: 300}}
  pass: {kind: flow.forward, replicas: 2}
  tally: {kind: sink.count}
  question: {kind: source.value, params: {value: "6*7"}}
  asker:
    kind: agent.llm
    tools: [calc]
    params: )" + agent_params + R"(
  calc: {kind: tool.calculator}
  answers: {kind: sink.count}
edges:
  - numbers -> pass -> tally
  - question -> asker -> answers
)";
}

const char* scripted_agent =
    R"({rules: [{when: first, call: {tool: calc, arguments: {expression: "{{input}}"}}}, {when: after_tool, reply: "{{tool.calc.result}}"}]})";

struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name) {
    dir = fs::temp_directory_path() / ("loom-trace-test-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~scratch() { fs::remove_all(dir); }
  fs::path write(const std::string& file, const std::string& text) const {
    std::ofstream(dir / file) << text;
    return dir / file;
  }
};

}  // namespace

TEST_CASE("traceparent: formatted and parsed per W3C; malformed headers are refused") {
  auto c = observe::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(c);
  CHECK(observe::to_hex(c->trace) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(c->span == 0x00f067aa0ba902b7ull);
  CHECK(observe::to_traceparent(*c) == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  CHECK_FALSE(observe::parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));  // uppercase
  CHECK_FALSE(observe::parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));  // zero trace
  CHECK_FALSE(observe::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));  // zero span
  CHECK_FALSE(observe::parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));  // version ff
  CHECK_FALSE(observe::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"));     // short
  CHECK_FALSE(observe::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));  // v00 + extra
  CHECK(observe::parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"));  // later version
  // Fresh ids are random and never zero.
  observe::tracer a, b;
  CHECK(a.trace().valid());
  CHECK_FALSE(a.trace() == b.trace());
  CHECK(a.root() != 0);
}

TEST_CASE("loom run --trace writes Chrome trace events: a track per instance, batch spans, call -> tool flows" *
          doctest::timeout(60)) {
  scratch s("chrome");
  auto graph = s.write("graph.yaml", graph_yaml(scripted_agent));
  auto file = s.dir / "trace.json";
  auto r = run_process({loom_binary(), "run", graph.string(), "-q", "--trace", file.string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto doc = json::parse(slurp(file));
  const auto& events = doc.at("traceEvents");
  std::map<std::pair<int, int>, std::string> thread;  // (pid, tid) -> name
  std::map<int, std::string> process;
  for (const auto& e : events)
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      thread[{e.at("pid"), e.at("tid")}] = e.at("args").at("name");
    else if (e.at("ph") == "M" && e.at("name") == "process_name")
      process[e.at("pid")] = e.at("args").at("name");
  CHECK(process.size() == 1);
  std::set<std::string> tracks;
  for (const auto& [k, name] : thread) tracks.insert(name);
  for (auto n : {"numbers", "pass[0]", "pass[1]", "tally", "question", "asker", "calc", "answers", "run"})
    CHECK_MESSAGE(tracks.count(n) == 1, n);
  // Batch spans: their counts add up to the values each instance handled.
  std::map<std::string, std::int64_t> handled;
  std::map<std::string, std::int64_t> pulled;
  std::map<std::string, json> by_name;
  for (const auto& e : events) {
    if (e.at("ph") != "X") continue;
    auto track = thread[{e.at("pid"), e.at("tid")}];
    CHECK(e.at("dur").get<double>() >= 0);
    if (e.at("cat") == "batch") handled[track] += e.at("args").at("count").get<std::int64_t>();
    if (e.at("cat") == "pull") pulled[track] += e.at("args").at("count").get<std::int64_t>();
    by_name[e.at("name").get<std::string>() + "@" + track] = e;
  }
  CHECK(handled["tally"] == 300);
  CHECK(handled["pass[0]"] + handled["pass[1]"] == 300);
  CHECK(handled["pass[0]"] > 0);
  CHECK(handled["pass[1]"] > 0);
  CHECK(pulled["numbers"] == 300);
  CHECK(handled["asker"] >= 1);
  REQUIRE(by_name.count("call calc@asker") == 1);
  REQUIRE(by_name.count("tool calc@calc") == 1);
  // The tool's span lies within the call's span, and two flows join them: call -> tool and tool -> reply.
  const auto& call = by_name["call calc@asker"];
  const auto& tool = by_name["tool calc@calc"];
  CHECK(tool.at("ts").get<double>() >= call.at("ts").get<double>());
  CHECK(tool.at("ts").get<double>() + tool.at("dur").get<double>() <=
        call.at("ts").get<double>() + call.at("dur").get<double>() + 1);
  std::map<std::string, std::vector<json>> flows;
  for (const auto& e : events)
    if (e.at("ph") == "s" || e.at("ph") == "f") flows[e.at("id")].push_back(e);
  REQUIRE(flows.size() == 2);
  int out = 0, back = 0;
  for (const auto& [id, pair] : flows) {
    REQUIRE(pair.size() == 2);
    const auto& start = pair[0].at("ph") == "s" ? pair[0] : pair[1];
    const auto& finish = pair[0].at("ph") == "s" ? pair[1] : pair[0];
    auto from = thread[{start.at("pid"), start.at("tid")}], to = thread[{finish.at("pid"), finish.at("tid")}];
    if (from == "asker" && to == "calc") ++out;
    if (from == "calc" && to == "asker") ++back;
    CHECK(finish.at("ts").get<double>() >= start.at("ts").get<double>());
  }
  CHECK(out == 1);
  CHECK(back == 1);
}

TEST_CASE("loom run --trace to a file it cannot write is refused before the run, naming it; a bad --otlp URL too" *
          doctest::timeout(60)) {
  scratch s("bad");
  auto graph = s.write("graph.yaml", graph_yaml(scripted_agent));
  // A folder that cannot be made (a file stands where it would be): refused at start (missing folders are
  // made: cli_test).
  auto r = run_process({loom_binary(), "run", graph.string(), "-q", "--trace", (s.dir / "graph.yaml/t.json").string()});
  CHECK(r.status == 2);
  CHECK(r.err.find("graph.yaml/t.json: cannot create folder") != std::string::npos);
  r = run_process({loom_binary(), "run", graph.string(), "-q", "--otlp", "localhost:4318"});
  CHECK(r.status == 2);
  CHECK(r.err.find("--otlp") != std::string::npos);
  CHECK(r.err.find("localhost:4318") != std::string::npos);
}

TEST_CASE("loom run --otlp: one trace covers the run, the agent's model requests carry it as traceparent" *
          doctest::timeout(90)) {
  receiver rx("otlp");
  scratch s("otlp");
  auto graph = s.write("graph.yaml", graph_yaml("{backend: http, base_url: \"" + rx.chat_url() +
                                                "\", model: test-model, retries: 0}"));
  auto r = run_process({loom_binary(), "run", graph.string(), "-q", "--otlp", rx.otlp_url()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto spans = rx.spans();
  REQUIRE(!spans.empty());
  std::set<std::string> traces;
  std::map<std::string, json> by_id;
  for (const auto& sp : spans) {
    traces.insert(sp.at("traceId"));
    by_id[sp.at("spanId")] = sp;
    CHECK(sp.at("spanId").get<std::string>().size() == 16);
    CHECK(std::stoll(sp.at("endTimeUnixNano").get<std::string>()) >=
          std::stoll(sp.at("startTimeUnixNano").get<std::string>()));
  }
  REQUIRE(traces.size() == 1);
  auto trace = *traces.begin();
  CHECK(trace.size() == 32);
  // Every span but the root has a parent in the trace.
  CHECK(count_roots(spans, by_id) == 1);
  // Two model requests (tool call, then the answer), GenAI attributes from the reply's usage.
  std::vector<json> chats;
  for (const auto& sp : spans)
    if (attribute(sp, "gen_ai.operation.name") == "chat") chats.push_back(sp);
  REQUIRE(chats.size() == 2);
  for (const auto& c : chats) {
    CHECK(c.at("name") == "chat test-model");
    CHECK(attribute(c, "gen_ai.request.model") == "test-model");
    CHECK(attribute(c, "gen_ai.usage.input_tokens") == "11");
    CHECK(attribute(c, "gen_ai.usage.output_tokens") == "7");
    CHECK(attribute(c, "loom.node") == "asker");
    CHECK(c.at("kind") == 3);
  }
  // The chat server saw the same trace id, and each header names its request's span.
  auto headers = rx.traceparents();
  REQUIRE(headers.size() == 2);
  for (const auto& h : headers) {
    auto c = observe::parse_traceparent(h);
    REQUIRE_MESSAGE(c, h);
    CHECK(observe::to_hex(c->trace) == trace);
    CHECK(attribute(by_id[observe::to_hex(c->span)], "gen_ai.operation.name") == "chat");
  }
  // The tool's span is the child of the agent's call span.
  json call, tool;
  for (const auto& sp : spans) {
    if (sp.at("name") == "call calc") call = sp;
    if (sp.at("name") == "tool calc") tool = sp;
  }
  REQUIRE(call.is_object());
  REQUIRE(tool.is_object());
  CHECK(tool.at("parentSpanId") == call.at("spanId"));
  CHECK(attribute(tool, "loom.node") == "calc");
}

TEST_CASE("loom run --otlp with base_urls: each model request's span names the replica that answered and why" *
          doctest::timeout(90)) {
  receiver rx("routed");
  scratch s("routed");
  // Two replicas: the receiver's chat port first, its OTLP port (which answers chat requests the same) second.
  auto graph = s.write("graph.yaml", graph_yaml("{backend: http, base_urls: [\"" + rx.chat_url() + "\", \"" +
                                                rx.otlp_url() + "/v1\"], model: test-model, retries: 0}"));
  auto r = run_process({loom_binary(), "run", graph.string(), "-q", "--otlp", rx.otlp_url()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::vector<json> chats;
  for (const auto& sp : rx.spans())
    if (attribute(sp, "gen_ai.operation.name") == "chat") chats.push_back(sp);
  REQUIRE(chats.size() == 2);
  std::sort(chats.begin(), chats.end(), [](const json& a, const json& b) {
    return std::stoll(a.at("startTimeUnixNano").get<std::string>()) <
           std::stoll(b.at("startTimeUnixNano").get<std::string>());
  });
  // The first request: no prefix anywhere, the first replica in turn; the second (the tool's result
  // appended) goes where its prefix is.
  CHECK(attribute(chats[0], "server.address") == rx.chat_url());
  CHECK(attribute(chats[0], "loom.route.reason") == "no_prefix");
  CHECK(attribute(chats[1], "server.address") == rx.chat_url());
  CHECK(attribute(chats[1], "loom.route.reason") == "prefix_hit");
}

TEST_CASE("without --otlp nothing is exported and model requests carry no traceparent" * doctest::timeout(60)) {
  receiver rx("off");
  scratch s("off");
  auto graph = s.write("graph.yaml", graph_yaml("{backend: http, base_url: \"" + rx.chat_url() +
                                                "\", model: test-model, retries: 0}"));
  auto r = run_process({loom_binary(), "run", graph.string(), "-q"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(rx.spans().empty());
  auto headers = rx.traceparents();
  REQUIRE(headers.size() == 2);
  for (const auto& h : headers) CHECK(h == "-");
}

TEST_CASE("loom serve --otlp: a request is one trace, under the request's own traceparent" * doctest::timeout(90)) {
  receiver rx("serve");
  loom::test::serve_process s("tests/observe/served.yaml", {"--otlp", rx.otlp_url()});
  httplib::Client c{s.host(), s.port()};
  c.set_read_timeout(30, 0);
  const std::string client_trace = "0af7651916cd43dd8448eb211c80319c", client_span = "b7ad6b7169203331";
  httplib::Headers headers{{"traceparent", "00-" + client_trace + "-" + client_span + "-01"}};
  json body{{"model", "traced_serve"}, {"messages", json::array({{{"role", "user"}, {"content", "6*7"}}})}};
  auto res = c.Post("/v1/chat/completions", headers, body.dump(), "application/json");
  REQUIRE(res);
  INFO(s.err());
  REQUIRE(res->status == 200);
  CHECK(res->body.find("42") != std::string::npos);
  // A request without one starts a trace of its own.
  res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  // The export follows the run's end; give it a moment.
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    std::set<std::string> traces;
    for (const auto& sp : rx.spans()) traces.insert(sp.at("traceId"));
    if (traces.size() >= 2 || std::chrono::steady_clock::now() > end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::map<std::string, std::vector<json>> by_trace;
  for (const auto& sp : rx.spans()) by_trace[sp.at("traceId")].push_back(sp);
  REQUIRE(by_trace.size() == 2);
  REQUIRE(by_trace.count(client_trace) == 1);
  int under_client = 0;
  bool tool = false;
  for (const auto& sp : by_trace[client_trace]) {
    if (sp.value("parentSpanId", "") == client_span) {
      ++under_client;
      CHECK(sp.at("name") == "request traced_serve");
    }
    tool = tool || sp.at("name") == "tool calc";
  }
  CHECK(under_client == 1);
  CHECK(tool);
  for (const auto& [trace, spans] : by_trace) {
    if (trace == client_trace) continue;
    int roots = 0;
    for (const auto& sp : spans) roots += sp.contains("parentSpanId") ? 0 : 1;
    CHECK(roots == 1);
  }
}

namespace {

// A collector that takes connections and never answers: a socket on 127.0.0.1 that listens and never
// accepts (the kernel completes the handshakes into its backlog).
class black_hole {
 public:
  black_hole() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 64) == 0);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~black_hole() { close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

std::uint64_t dropped(const char* reason) {
  return observe::metrics().get_counter("loom_otlp_dropped_total", "", {{"reason", reason}}).value();
}

}  // namespace

TEST_CASE("the OTLP exporter never blocks its caller: past its bound a trace is dropped and counted" *
          doctest::timeout(30)) {
  black_hole collector;
  auto full_before = dropped("queue_full"), failed_before = dropped("export_failed");
  auto t0 = std::chrono::steady_clock::now();
  {
    observe::otlp_exporter exporter(collector.url(), 2, std::chrono::milliseconds(300));
    for (int i = 0; i < 10; ++i) {
      auto t = std::make_shared<observe::tracer>("test");
      t->finish("request", observe::span_kind::request);
      exporter.submit(t);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(200));  // nothing waited
    CHECK(dropped("queue_full") - full_before >= 7);  // one sending, two waiting, the rest dropped
  }
  // The exporter's end waits at most for the export under way and one more deadline.
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
  CHECK(dropped("queue_full") - full_before + dropped("export_failed") - failed_before == 10);
}

TEST_CASE("loom serve --otlp to a collector that never answers: completions stay fast, the drops show in /metrics" *
          doctest::timeout(90)) {
  black_hole collector;
  auto metrics_port = loom::test::free_port();
  loom::test::serve_process s("tests/observe/served.yaml",
                              {"--otlp", collector.url(), "--metrics", "127.0.0.1:" + std::to_string(metrics_port)});
  httplib::Client c{s.host(), s.port()};
  c.set_read_timeout(30, 0);
  json body{{"model", "traced_serve"}, {"messages", json::array({{{"role", "user"}, {"content", "6*7"}}})}};
  for (int i = 0; i < 6; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(res);
    INFO(s.err());
    CHECK(res->status == 200);
    CHECK(took < std::chrono::milliseconds(1000));  // the export (2 s to its deadline) is not on this path
  }
  // Each export passes its deadline: the traces are dropped, and counted.
  httplib::Client m{"127.0.0.1", metrics_port};
  std::string text;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < end) {
    if (auto r = m.Get("/metrics"); r && r->status == 200) text = r->body;
    if (text.find("loom_otlp_dropped_total{reason=\"export_failed\"} ") != std::string::npos &&
        text.find("loom_otlp_dropped_total{reason=\"export_failed\"} 0") == std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CAPTURE(text);
  CHECK(text.find("loom_otlp_dropped_total{reason=\"export_failed\"} ") != std::string::npos);
  CHECK(text.find("loom_otlp_dropped_total{reason=\"export_failed\"} 0") == std::string::npos);
  CHECK(s.err().find("--otlp") != std::string::npos);  // the failure is logged, once
}
