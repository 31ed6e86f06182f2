// tests/cli/cancel_test.cpp: the real `loom` binary, stopped and moved: SIGINT reaches every kind that blocks
// (an agent on a model server that never answers, tool.mcp on a stdio or Streamable HTTP server that never
// answers a call or its initialize: the run exits 130 within 2 s of the signal, files end on a complete
// record, the server process is gone), and a graph file's relative paths resolve against its own folder,
// whatever the working folder.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A TCP port on 127.0.0.1 that takes connections (the kernel's backlog) and never answers.
struct silent_server {
  int fd = -1;
  int port = 0;
  silent_server() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~silent_server() { ::close(fd); }
};

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("loom-cancel-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A scripted agent that calls tool `slow__hang` once, and the tool.mcp node `slow` given by `tool_params`.
std::string agent_calls_mcp(const std::string& tool_params) {
  return "graph: stuck-mcp\nnodes:\n"
         "  tasks: {kind: source.value, params: {value: go}}\n"
         "  agent:\n"
         "    kind: agent.llm\n"
         "    tools: [slow]\n"
         "    params:\n"
         "      tool_timeout_ms: 60000\n"
         "      rules:\n"
         "        - {match: go, when: first, call: {tool: slow__hang, arguments: {}}}\n"
         "        - {match: go, when: after_tool, reply: \"{{tool.slow__hang}}\"}\n"
         "  slow: {kind: tool.mcp, params: " +
         tool_params +
         "}\n"
         "  out: {kind: sink.stdout, params: {format: jsonl}}\n"
         "edges: [tasks -> agent -> out]\n";
}

// A stdio MCP server in sh: it writes its pid to `pid`, answers initialize and tools/list (one tool, `hang`),
// then on tools/call touches `called` and never answers.
void write_hanging_stdio_server(const fs::path& script, const fs::path& dir) {
  std::ofstream(script) << "pid=" << (dir / "pid").string() << "\ncalled=" << (dir / "called").string() << "\n"
                        << R"(echo $$ > "$pid"
while IFS= read -r line; do
  id=$(printf '%s\n' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"hang","version":"1"}}}\n' "$id" ;;
    *'"method":"tools/list"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"hang","description":"never answers","inputSchema":{"type":"object"}}]}}\n' "$id" ;;
    *'"method":"tools/call"'*)
      touch "$called"; sleep 1000 ;;
  esac
done
)";
}

// Whether process `pid` is gone (reaped), within `wait`.
bool gone_within(pid_t pid, std::chrono::milliseconds wait) {
  auto until = std::chrono::steady_clock::now() + wait;
  while (::kill(pid, 0) == 0 || errno != ESRCH) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// A Streamable HTTP MCP server on 127.0.0.1 (in this process): answers initialize and tools/list, holds every
// tools/call until it is destroyed (or 60 s).
struct hanging_http_server {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex m;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> calls{0};

  hanging_http_server() {
    using nlohmann::json;
    server.Post("/mcp", [this](const httplib::Request& req, httplib::Response& res) {
      auto j = json::parse(req.body, nullptr, false);
      if (!j.is_object() || !j.contains("id")) {
        res.status = 202;  // a notification
        return;
      }
      auto method = j.value("method", std::string());
      json result;
      if (method == "initialize") {
        result = {{"protocolVersion", "2025-06-18"},
                  {"capabilities", {{"tools", json::object()}}},
                  {"serverInfo", {{"name", "hang"}, {"version", "1"}}}};
        res.set_header("Mcp-Session-Id", "s1");
      } else if (method == "tools/list") {
        result = {{"tools", json::array({{{"name", "hang"},
                                          {"description", "never answers"},
                                          {"inputSchema", {{"type", "object"}}}}})}};
      } else if (method == "tools/call") {
        ++calls;
        std::unique_lock lock(m);
        cv.wait_for(lock, std::chrono::seconds(60), [&] { return released; });
        res.status = 503;
        return;
      }
      res.set_content(json{{"jsonrpc", "2.0"}, {"id", j["id"]}, {"result", result}}.dump(), "application/json");
    });
    server.Delete("/mcp", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~hanging_http_server() {
    {
      std::lock_guard lock(m);
      released = true;
    }
    cv.notify_all();
    server.stop();
    thread.join();
  }
};

}  // namespace

TEST_CASE("SIGINT while an agent waits on a model server that never answers: exit 130 within 2 s" *
          doctest::timeout(60)) {
  silent_server server;
  auto dir = fresh_dir("agent");
  fs::create_directories(dir / "out");
  auto graph = dir / "graph.yaml";
  std::ofstream(graph) << "graph: stuck\nnodes:\n"
                          "  prompts: {kind: source.value, params: {value: hello, repeat: 3}}\n"
                          "  agent: {kind: agent.llm, params: {backend: http, base_url: \"http://127.0.0.1:"
                       << server.port
                       << "/v1\", timeout_ms: 60000, retries: 0}}\n"
                          "  answers: {kind: sink.file, params: {path: out/answers.jsonl}}\n"
                          "  nums: {kind: source.sequence, params: {count: 100000000}}\n"
                          "  pace: {kind: flow.throttle, params: {rate: 2000}}\n"
                          "  log: {kind: sink.file, params: {path: out/numbers.jsonl}}\n"
                          "edges: [prompts -> agent, agent -> answers, nums -> pace, pace -> log]\n";
  process_options o;
  o.deadline = std::chrono::milliseconds(30000);
  o.sigint_after = std::chrono::milliseconds(1000);
  auto r = run_process({loom_binary(), "run", graph.string()}, o);
  INFO(r.err);
  CHECK(r.status == 130);
  REQUIRE(r.sigint_at > 0);
  MESSAGE("SIGINT to exit: " << r.seconds - r.sigint_at << " s");
  CHECK(r.seconds - r.sigint_at < 2.0);  // the model call in flight is closed, not waited for
  auto numbers = read_file(dir / "out/numbers.jsonl");
  REQUIRE(!numbers.empty());
  CHECK(numbers.back() == '\n');
  auto answers = read_file(dir / "out/answers.jsonl");
  CHECK((answers.empty() || answers.back() == '\n'));
  fs::remove_all(dir);
}

TEST_CASE("a graph file's relative paths resolve against its folder, from any working folder" *
          doctest::timeout(60)) {
  auto dir = fresh_dir("paths");
  fs::create_directories(dir / "project/data");
  fs::create_directories(dir / "project/out");
  fs::create_directories(dir / "elsewhere");
  std::ofstream(dir / "project/data/in.txt") << "one\ntwo\nthree\n";
  std::ofstream(dir / "project/graph.yaml") << "graph: paths\nnodes:\n"
                                               "  src: {kind: source.file, params: {path: data/in.txt}}\n"
                                               "  out: {kind: sink.file, params: {path: out/copy.jsonl}}\n"
                                               "edges: [src -> out]\n";
  process_options o;
  o.cwd = (dir / "elsewhere").string();
  auto r = run_process({loom_binary(), "run", "../project/graph.yaml"}, o);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(read_file(dir / "project/out/copy.jsonl") == "\"one\"\n\"two\"\n\"three\"\n");
  CHECK_FALSE(fs::exists(dir / "elsewhere/out"));
  fs::remove_all(dir);
}

TEST_CASE("the flagship runs from another folder" * doctest::timeout(120)) {
  auto dir = fresh_dir("flagship");
  fs::copy(fs::path(LOOM_SOURCE_DIR) / "configs", dir / "configs", fs::copy_options::recursive);
  fs::create_directories(dir / "elsewhere");
  fs::create_directories(dir / "out");  // configs/food_truck.yaml writes ../out/launch_package.md
  process_options o;
  o.cwd = (dir / "elsewhere").string();
  auto r = run_process({loom_binary(), "run", (dir / "configs/food_truck.yaml").string()}, o);
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto package = read_file(dir / "out/launch_package.md");
  CHECK(package.find("# Food truck launch package") != std::string::npos);
  CHECK(package.find("## market") != std::string::npos);
  fs::remove_all(dir);
}

// Runs `loom run GRAPH`, sends SIGINT `after` the start once `ready()` holds, and checks that loom exits 130
// within 2 s of the signal, whatever the graph was waiting on.
static void sigint_exits_quickly(const fs::path& graph, std::chrono::milliseconds after, std::function<bool()> ready) {
  process_options o;
  o.deadline = std::chrono::milliseconds(40000);
  o.sigint_after = after;
  o.sigint_when = std::move(ready);
  auto r = run_process({loom_binary(), "run", graph.string()}, o);
  INFO(r.err);
  REQUIRE(r.sigint_at > 0);
  CHECK(r.status == 130);
  MESSAGE("SIGINT to exit: " << r.seconds - r.sigint_at << " s");
  CHECK(r.seconds - r.sigint_at < 2.0);
}

TEST_CASE("SIGINT while an agent's call waits on a stdio MCP server that never answers: exit 130 within 2 s" *
          doctest::timeout(60)) {
  auto dir = fresh_dir("mcp-stdio");
  write_hanging_stdio_server(dir / "server.sh", dir);
  std::ofstream(dir / "graph.yaml") << agent_calls_mcp("{command: [sh, " + (dir / "server.sh").string() +
                                                       "], timeout_ms: 20000}");
  // the call is under way; within 2 s: not the tool's timeout_ms (20 s)
  sigint_exits_quickly(dir / "graph.yaml", std::chrono::milliseconds(500), [&] { return fs::exists(dir / "called"); });
  pid_t server = 0;
  std::ifstream(dir / "pid") >> server;
  REQUIRE(server > 0);
  CHECK(gone_within(server, std::chrono::milliseconds(2000)));  // terminated and reaped by loom, not orphaned
  fs::remove_all(dir);
}

TEST_CASE("SIGINT while tool.mcp waits for a stdio server's initialize: exit 130 within 2 s" * doctest::timeout(60)) {
  auto dir = fresh_dir("mcp-init");
  std::ofstream(dir / "server.sh") << "echo $$ > " << (dir / "pid").string() << "\nsleep 1000\n";
  std::ofstream(dir / "graph.yaml") << agent_calls_mcp("{command: [sh, " + (dir / "server.sh").string() +
                                                       "], init_timeout_ms: 20000}");
  // within 2 s: not init_timeout_ms (20 s)
  sigint_exits_quickly(dir / "graph.yaml", std::chrono::milliseconds(1000), [&] { return fs::exists(dir / "pid"); });
  pid_t server = 0;
  std::ifstream(dir / "pid") >> server;
  REQUIRE(server > 0);
  CHECK(gone_within(server, std::chrono::milliseconds(2000)));
  fs::remove_all(dir);
}

TEST_CASE("SIGINT while an agent's call waits on a Streamable HTTP MCP server that never answers: exit 130 "
          "within 2 s" * doctest::timeout(60)) {
  hanging_http_server server;
  auto dir = fresh_dir("mcp-http");
  std::ofstream(dir / "graph.yaml") << agent_calls_mcp("{url: \"http://127.0.0.1:" + std::to_string(server.port) +
                                                       "/mcp\", timeout_ms: 20000}");
  // within 2 s: not the tool's timeout_ms (20 s)
  sigint_exits_quickly(dir / "graph.yaml", std::chrono::milliseconds(500), [&] { return server.calls.load() > 0; });
  fs::remove_all(dir);
}
