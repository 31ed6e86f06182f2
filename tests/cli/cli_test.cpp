// tests/cli/cli_test.cpp: the real `loom` binary, as a user runs it: every config in configs/ validates and
// runs; every broken config in tests/configs/broken/ gets its FILE:LINE:COL error and exit status 2; runs
// that fail, are interrupted or use plugins end with the documented status and message.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli/process.hpp"
#include "tests/support/expectations.hpp"

namespace fs = std::filesystem;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

const fs::path source_dir{LOOM_SOURCE_DIR};

fs::path work_dir(const std::string& name) { return loom::test::config_work_dir(name); }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ext) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("every config in configs/ validates" * doctest::timeout(60)) {
  auto configs = files_in(source_dir / "configs", ".yaml");
  REQUIRE(configs.size() >= 4);
  for (const auto& c : configs) {
    auto r = run_process({loom_binary(), "validate", c.string()});
    INFO(c, "\n", r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find(": ok") != std::string::npos);
  }
}

TEST_CASE("every config in configs/ runs to the end and prints its summary" * doctest::timeout(120)) {
  auto dir = work_dir("configs");
  for (const auto& c : files_in(dir / "configs", ".yaml")) {
    // mcp_*.yaml start an MCP server from npm: tests/mcp runs them with the server its fixture installed.
    if (c.filename().string().rfind("mcp_", 0) == 0) continue;
    process_options o;
    o.cwd = dir.string();
    auto r = run_process({loom_binary(), "run", "configs/" + c.filename().string()}, o);
    INFO(c, "\n", r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("queue hwm") != std::string::npos);
  }
}

TEST_CASE("the triage graph routes, batches and writes what it says" * doctest::timeout(60)) {
  auto dir = work_dir("triage");
  process_options o;
  o.cwd = dir.string();
  auto r = run_process({loom_binary(), "run", "configs/triage.yaml"}, o);
  REQUIRE(r.status == 0);
  std::istringstream out(r.out);
  int chats = 0;
  for (std::string line; std::getline(out, line);) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["type"] == "chat");
    ++chats;
  }
  CHECK(chats == 4);
  auto batches = read_file(dir / "out/offline_batches.jsonl");
  CHECK(std::count(batches.begin(), batches.end(), '\n') == 2);  // 5 jobs in batches of 4: 4 + 1
  auto review = read_file(dir / "out/review.jsonl");
  CHECK(review.find("\"audit\"") != std::string::npos);
}

TEST_CASE("every broken config gets its FILE:LINE:COL error and exit status 2" * doctest::timeout(120)) {
  auto broken = source_dir / "tests/configs/broken";
  auto files = files_in(broken, ".yaml");
  REQUIRE(files.size() >= 15);
  for (const auto& f : files) {
    auto r = run_process({loom_binary(), "validate", f.string()});
    INFO(f, "\n", r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("Segmentation") == std::string::npos);
    CHECK(r.err.find("terminate called") == std::string::npos);
    loom::test::check_expected_errors(f, r.err);
  }
}

TEST_CASE("loom validate warns at the router whose unconnected default would fail the run" * doctest::timeout(60)) {
  auto dir = work_dir("router");
  auto graph = (dir / "router.yaml").string();
  std::ofstream(graph) << "graph: r\nnodes:\n  src: {kind: source.value, params: {value: {type: other}}}\n"
                          "  route:\n    kind: flow.router\n    params: {field: type, routes: {chat: chat}}\n"
                          "  out: {kind: sink.count}\nedges:\n  - src -> route\n  - route.chat -> out\n";
  auto v = run_process({loom_binary(), "validate", graph});
  INFO(v.err);
  CHECK(v.status == 0);
  CHECK(v.err.find(graph + ":4:3: warning: node `route` (flow.router): output `default` (values no route matches) "
                           "is not connected, so the first value sent there fails the run") != std::string::npos);
  // What it warns about: the run fails on the value no route matches.
  auto r = run_process({loom_binary(), "run", graph});
  CHECK(r.status == 1);
  CHECK(r.err.find("no route for value `other` and output `default` is not connected") != std::string::npos);
  // `unmatched: fail` says that is meant: no warning, and the same value fails the run.
  auto strict = (dir / "strict.yaml").string();
  std::ofstream(strict) << "graph: r\nnodes:\n  src: {kind: source.value, params: {value: {type: other}}}\n"
                           "  route:\n    kind: flow.router\n"
                           "    params: {field: type, routes: {chat: chat}, unmatched: fail}\n"
                           "  out: {kind: sink.count}\nedges:\n  - src -> route\n  - route.chat -> out\n";
  auto meant = run_process({loom_binary(), "validate", strict});
  CHECK(meant.status == 0);
  CHECK(meant.err.find("warning") == std::string::npos);
  auto failed = run_process({loom_binary(), "run", strict});
  CHECK(failed.status == 1);
  CHECK(failed.err.find("no route for value `other` and `unmatched: fail`") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a missing file and a usage error exit with status 2") {
  auto r = run_process({loom_binary(), "validate", "/nonexistent/graph.yaml"});
  CHECK(r.status == 2);
  CHECK(r.err.find("/nonexistent/graph.yaml") != std::string::npos);
  CHECK(run_process({loom_binary()}).status == 2);
  CHECK(run_process({loom_binary(), "frobnicate"}).status == 2);
  CHECK(run_process({loom_binary(), "graph", "x.yaml", "--format", "png"}).status == 2);
}

TEST_CASE("--set overrides a param and its mistakes are config errors" * doctest::timeout(60)) {
  auto cfg = (source_dir / "configs/pipeline.yaml").string();
  auto r = run_process({loom_binary(), "run", cfg, "--set", "src.count=500", "--set", "count.expect=500"});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("500") != std::string::npos);

  auto bad_node = run_process({loom_binary(), "run", cfg, "--set", "sr.count=5"});
  CHECK(bad_node.status == 2);
  CHECK(bad_node.err.find("did you mean `src`") != std::string::npos);

  auto bad_type = run_process({loom_binary(), "run", cfg, "--set", "src.count=many"});
  CHECK(bad_type.status == 2);
  CHECK(bad_type.err.find("count") != std::string::npos);
}

TEST_CASE("a run whose node fails exits 1 naming the node" * doctest::timeout(60)) {
  auto r = run_process({loom_binary(), "run", (source_dir / "configs/pipeline.yaml").string(), "--set",
                        "count.expect=7"});
  CHECK(r.status == 1);
  CHECK(r.err.find("node `count` (sink.count)") != std::string::npos);
  CHECK(r.err.find("expected 7") != std::string::npos);
}

TEST_CASE("a sink that cannot write fails the run naming the node and the path" * doctest::timeout(60)) {
  auto dir = work_dir("sinks");
  auto graph = dir / "sink.yaml";
  std::ofstream(graph) << "graph: sink\nnodes:\n  src: {kind: source.sequence, params: {count: 100000}}\n"
                          "  out: {kind: sink.file, params: {path: /dev/full}}\nedges:\n  - src -> out\n";
  auto full = run_process({loom_binary(), "run", graph.string()});
  INFO(full.err);
  CHECK(full.status == 1);
  CHECK(full.err.find("node `out` (sink.file)") != std::string::npos);
  CHECK(full.err.find("/dev/full") != std::string::npos);

  // A folder it cannot make: the graph file is in the way.
  auto under_file = graph.string() + "/x.jsonl";
  auto bad = run_process({loom_binary(), "run", graph.string(), "--set", "out.path=" + under_file});
  INFO(bad.err);
  CHECK(bad.status == 1);
  CHECK(bad.err.find("cannot create folder " + graph.string() + " for " + under_file) != std::string::npos);
}

TEST_CASE("SIGINT stops a run within two seconds; the sink's file ends on a complete record" *
          doctest::timeout(60)) {
  auto dir = work_dir("sigint");
  auto graph = dir / "slow.yaml";
  std::ofstream(graph) << "graph: slow\nnodes:\n"
                          "  src: {kind: source.sequence, params: {count: 100000000}}\n"
                          "  pace: {kind: flow.throttle, params: {rate: 5000}}\n"
                          "  out: {kind: sink.file, params: {path: out/numbers.jsonl}}\n"
                          "edges:\n  - src -> pace -> out\n";
  process_options o;
  o.cwd = dir.string();
  o.sigint_after = std::chrono::milliseconds(1000);
  auto r = run_process({loom_binary(), "run", graph.string()}, o);
  INFO(r.err);
  CHECK(r.status == 130);
  CHECK(r.seconds < 3.0);
  CHECK(r.err.find("interrupted") != std::string::npos);
  auto text = read_file(dir / "out/numbers.jsonl");
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  std::istringstream lines(text);
  std::int64_t expected = 0;
  for (std::string line; std::getline(lines, line); ++expected) CHECK(std::stoll(line) == expected);
  CHECK(expected > 100);
}

TEST_CASE("a user's plugin adds a kind that runs and is inspected like a built-in" * doctest::timeout(60)) {
  auto plugin = std::string(LOOM_BINARY_DIR) + "/lib/libloom_example_plugin.so";
  auto r = run_process({loom_binary(), "run", "-q", (source_dir / "examples/plugin/upper.yaml").string(),
                        "--plugin", plugin});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("HELLO") != std::string::npos);
  auto i = run_process({loom_binary(), "inspect", "text.upper", "--plugin", plugin});
  CHECK(i.status == 0);
  CHECK(i.out.find("text.upper") != std::string::npos);
  auto without = run_process({loom_binary(), "validate", (source_dir / "examples/plugin/upper.yaml").string()});
  CHECK(without.status == 2);
  CHECK(without.err.find("text.upper") != std::string::npos);
}

TEST_CASE("inspect lists every kind and describes one from its declaration") {
  auto all = run_process({loom_binary(), "inspect"});
  CHECK(all.status == 0);
  for (auto k : {"source.sequence", "source.value", "source.blob", "source.file", "flow.forward", "flow.batch",
                 "flow.gather", "flow.router", "flow.throttle", "sink.file", "sink.stdout", "sink.count"})
    CHECK(all.out.find(k) != std::string::npos);
  auto one = run_process({loom_binary(), "inspect", "source.sequence"});
  CHECK(one.status == 0);
  CHECK(one.out.find("count") != std::string::npos);
  CHECK(one.out.find("default 10") != std::string::npos);
  // What `loom validate` says of an output left unconnected, per port.
  auto vote = run_process({loom_binary(), "inspect", "flow.vote"});
  CHECK(vote.out.find("per question whose answers differ [unconnected: a warning]") != std::string::npos);
  CHECK(vote.out.find("the answer a quorum agrees on\n") != std::string::npos);
  auto bad = run_process({loom_binary(), "inspect", "source.sequense"});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("did you mean `source.sequence`") != std::string::npos);
}

TEST_CASE("graph prints DOT and Mermaid") {
  auto cfg = (source_dir / "configs/fanout.yaml").string();
  auto dot = run_process({loom_binary(), "graph", cfg, "--format", "dot"});
  CHECK(dot.status == 0);
  CHECK(dot.out.find("digraph") != std::string::npos);
  CHECK(dot.out.find("\"greeting\" -> \"shout\"") != std::string::npos);
  auto mermaid = run_process({loom_binary(), "graph", cfg, "--format", "mermaid"});
  CHECK(mermaid.status == 0);
  CHECK(mermaid.out.find("flowchart LR") != std::string::npos);
}

TEST_CASE("loom plan prints where each node goes, and every broken cluster file gets its error and status 2" *
          doctest::timeout(120)) {
  auto graph = (source_dir / "configs/cluster_pipeline.yaml").string();
  auto good = run_process({loom_binary(), "plan", graph, "--cluster", (source_dir / "configs/cluster/two_local.yaml").string()});
  INFO(good.err);
  CHECK(good.status == 0);
  CHECK(good.out.find("pinned by placement.host") != std::string::npos);
  auto files = files_in(source_dir / "tests/configs/broken_cluster", ".yaml");
  REQUIRE(files.size() >= 10);
  for (const auto& f : files) {
    auto r = run_process({loom_binary(), "plan", graph, "--cluster", f.string()});
    INFO(f, "\n", r.err);
    CHECK(r.status == 2);
    loom::test::check_expected_errors(f, r.err);
  }
}

TEST_CASE("docs/kinds.md is what loom inspect says of every kind") {
  auto doc = read_file(source_dir / "docs/kinds.md");
  auto all = run_process({loom_binary(), "inspect"});
  REQUIRE(all.status == 0);
  std::istringstream names(all.out);
  int kinds = 0;
  for (std::string line; std::getline(names, line); ++kinds) {
    auto kind = line.substr(0, line.find(' '));
    auto one = run_process({loom_binary(), "inspect", kind});
    INFO(kind, ": docs/kinds.md is stale; rewrite it with `bash scripts/dev.sh kinds`");
    CHECK(doc.find("## " + kind + "\n\n```\n" + one.out + "```\n") != std::string::npos);
  }
  CHECK(kinds >= 17);
}

TEST_CASE("loom mcp: a message nested 300,000 deep on stdin is a parse error, and the next one is answered") {
  auto dir = work_dir("mcp-deep");
  std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":)" + std::string(300'000, '[') +
                     std::string(300'000, ']') + "}}\n";
  std::ofstream(dir / "in.jsonl") << deep << R"({"jsonrpc":"2.0","id":2,"method":"ping"})" << "\n";
  auto r = run_process({"/bin/sh", "-c",
                        "exec \"$0\" mcp configs/serve_echo.yaml < in.jsonl", loom_binary()},
                       process_options{std::chrono::milliseconds(60000), {}, {}, dir.string()});
  INFO(r.err);
  CHECK(r.status == 0);
  std::vector<nlohmann::json> replies;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) replies.push_back(nlohmann::json::parse(line));
  REQUIRE(replies.size() == 2);
  CHECK(replies[0]["id"].is_null());
  CHECK(replies[0]["error"]["code"] == -32700);
  CHECK(replies[0]["error"]["message"] ==
        "parse error: in the message, arrays and objects are nested deeper than 64 levels");
  CHECK(replies[1]["id"] == 2);
  CHECK(replies[1]["result"].is_object());
  fs::remove_all(dir);
}

TEST_CASE("--trace into a missing folder makes it; one that cannot be made fails at start, before the run") {
  auto dir = work_dir("trace-path");
  auto r = run_process({loom_binary(), "run", "configs/pipeline.yaml", "--set", "src.count=1000", "--set",
                        "count.expect=1000", "--trace", "traces/today/run.json"},
                       process_options{std::chrono::milliseconds(60000), {}, {}, dir.string()});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(fs::file_size(dir / "traces/today/run.json") > 0);
  CHECK((r.out + r.err).find("sink.count") != std::string::npos);  // the summary of a run
  std::ofstream(dir / "a_file") << "x";
  auto bad = run_process({loom_binary(), "run", "configs/pipeline.yaml", "--trace", "a_file/run.json"},
                         process_options{std::chrono::milliseconds(60000), {}, {}, dir.string()});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--trace a_file/run.json: cannot create folder a_file: Not a directory") != std::string::npos);
  CHECK((bad.out + bad.err).find("sink.count") == std::string::npos);  // no run, no summary
  fs::remove_all(dir);
}
