// tests/cli/cancel_test.cpp: the real `loom` binary, stopped and moved: SIGINT reaches an agent blocked on a
// model server that never answers (the run exits 130 within 2 s, files end on a complete record), and a
// graph file's relative paths resolve against its own folder, whatever the working folder.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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
  CHECK(r.seconds < 3.0);  // SIGINT at 1 s; the model call in flight is closed, not waited for
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
