// tests/cli/approve_test.cpp: people in the loop with the real `loom` binary (docs/durability.md, "People in
// the loop"): a run that holds values at human.approve detaches (exit 3) and `loom approve` resumes it; each
// value arrives once whether it is approved, rejected or edited; a live run takes a decision from another
// process, and a decision survives a SIGKILL of the run; parallel branches pause apart; a deadline that
// passes while the run is stopped applies at the resume; max_pending holds input back; and what is refused.
#include <doctest/doctest.h>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/cli/child.hpp"
#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using loom::test::child;
using loom::test::clock_type;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::process_result;
using loom::test::read_file;
using loom::test::run_process;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("loom-approve-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// `count` numbers held at `review` (params as YAML flow-map entries), approved ones to out.jsonl, rejected
// ones to rejected.jsonl.
fs::path write_graph(const fs::path& dir, int count, const std::string& params = "") {
  auto file = dir / "graph.yaml";
  std::ofstream(file) << "graph: approvals\n"
                         "nodes:\n"
                         "  src: {kind: source.sequence, params: {count: " << count << "}}\n"
                         "  review: {kind: human.approve, params: {" << params << "}}\n"
                         "  ok: {kind: sink.file, params: {path: \"" << (dir / "out.jsonl").string() << "\"}}\n"
                         "  no: {kind: sink.file, params: {path: \"" << (dir / "rejected.jsonl").string() << "\"}}\n"
                         "edges: [src -> review, review.out -> ok, review.rejected -> no]\n";
  return file;
}

process_result run_loom(const std::vector<std::string>& args) {
  std::vector<std::string> argv{loom_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, process_options{std::chrono::milliseconds(60000)});
}

nlohmann::json runs_json(const fs::path& state) {
  auto r = run_loom({"runs", state.string(), "--json"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

std::vector<std::uint64_t> pending_ids(const nlohmann::json& runs) {
  std::vector<std::uint64_t> ids;
  for (const auto& p : runs["pending"]) ids.push_back(p["id"].get<std::uint64_t>());
  return ids;
}

// Waits (deadline 60 s) until `ready` holds.
template <class Ready>
void wait_for(Ready ready, const std::string& what) {
  auto start = clock_type::now();
  while (!ready()) {
    REQUIRE_MESSAGE(clock_type::now() - start < std::chrono::seconds(60), "waited 60 s for " << what);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

TEST_CASE("a paused run detaches; loom approve resumes it; approved, rejected and edited values arrive once" *
          doctest::timeout(300)) {
  auto dir = fresh_dir("detach");
  auto graph = write_graph(dir, 4);
  auto state = (dir / "state").string();
  auto first = run_loom({"run", graph.string(), "-q", "--state", state, "--detach-on-pause"});
  INFO(first.err);
  REQUIRE(first.status == 3);
  CHECK(first.err.find("paused: decisions pending: 4 at `review` (ids 0, 1, 2, 3)") != std::string::npos);
  auto runs = runs_json(state);
  CHECK(runs["status"] == "paused");
  CHECK(pending_ids(runs) == std::vector<std::uint64_t>{0, 1, 2, 3});
  CHECK(runs["pending"][2]["shown"] == 2);
  CHECK(read_file(dir / "out.jsonl").empty());

  // Four decisions: each resumes the run, which pauses again until the last.
  auto approve = run_loom({"approve", state, "review", "--id", "2", "-q"});
  INFO(approve.err);
  CHECK(approve.status == 3);
  CHECK(read_file(dir / "out.jsonl") == "2\n");
  auto reject = run_loom({"approve", state, "review", "--id", "0", "--reject", "--reason", "too small", "-q"});
  INFO(reject.err);
  CHECK(reject.status == 3);
  auto rejected = nlohmann::json::parse(read_file(dir / "rejected.jsonl"));
  CHECK(rejected["value"] == 0);
  CHECK(rejected["reason"] == "too small");
  auto edit = run_loom({"approve", state, "review", "--id", "1", "--value", "{\"one\": 1}", "-q"});
  INFO(edit.err);
  CHECK(edit.status == 3);
  CHECK(pending_ids(runs_json(state)) == std::vector<std::uint64_t>{3});
  auto last = run_loom({"approve", state, "review", "-q"});  // the only one left: no --id needed
  INFO(last.err);
  CHECK(last.status == 0);
  CHECK(read_file(dir / "out.jsonl") == "2\n{\"one\":1}\n3\n");
  CHECK(nlohmann::json::parse(read_file(dir / "rejected.jsonl")) == rejected);  // still the one line
  runs = runs_json(state);
  CHECK(runs["status"] == "finished");
  CHECK(runs["pending"].empty());
  auto again = run_loom({"approve", state, "review"});
  CHECK(again.status == 2);
  CHECK(again.err.find("has finished") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a live run takes a decision from another process; a decision survives a SIGKILL of the run" *
          doctest::timeout(300)) {
  auto dir = fresh_dir("live");
  auto graph = write_graph(dir, 2);
  auto state = dir / "state";
  {
    child run({loom_binary(), "run", graph.string(), "-q", "--state", state.string()}, dir / "run.log");
    wait_for([&] { return fs::exists(state / "lock") && pending_ids(runs_json(state)).size() == 2; },
             "two pending decisions");
    auto r = run_loom({"approve", state.string(), "review", "--id", "0"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("the live run takes it") != std::string::npos);
    // Taken: a snapshot shows it no longer pending (sink.file buffers its records: the file may not have it).
    wait_for([&] { return pending_ids(runs_json(state)) == std::vector<std::uint64_t>{1}; }, "decision 0 taken");
    // Killed while it waits for decision 1.
    ::kill(run.pid, SIGKILL);
    CHECK(run.wait() == 128 + SIGKILL);
  }
  auto runs = runs_json(state);
  CHECK(runs["status"] == "running");
  CHECK(runs["live"] == false);
  auto r = run_loom({"approve", state.string(), "review", "--id", "1", "-q"});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(read_file(dir / "out.jsonl") == "0\n1\n");
  fs::remove_all(dir);
}

TEST_CASE("parallel branches pause and resume apart" * doctest::timeout(300)) {
  auto dir = fresh_dir("branches");
  auto file = dir / "graph.yaml";
  std::ofstream(file) << "graph: branches\n"
                         "nodes:\n"
                         "  src: {kind: source.value, params: {value: {amount: 5}}}\n"
                         "  legal: {kind: human.approve, params: {show: amount}}\n"
                         "  finance: {kind: human.approve}\n"
                         "  a: {kind: sink.file, params: {path: \"" << (dir / "a.jsonl").string() << "\"}}\n"
                         "  b: {kind: sink.file, params: {path: \"" << (dir / "b.jsonl").string() << "\"}}\n"
                         "edges:\n"
                         "  - src -> [legal, finance]\n"
                         "  - legal.out -> a\n"
                         "  - finance.out -> b\n";
  auto state = (dir / "state").string();
  auto first = run_loom({"run", file.string(), "-q", "--state", state, "--detach-on-pause"});
  INFO(first.err);
  REQUIRE(first.status == 3);
  auto runs = runs_json(state);
  REQUIRE(runs["pending"].size() == 2);
  CHECK(runs["pending"][0]["node"] == "legal");
  CHECK(runs["pending"][0]["shown"] == 5);  // show: amount
  auto legal = run_loom({"approve", state, "legal", "-q"});
  INFO(legal.err);
  CHECK(legal.status == 3);  // finance still waits
  CHECK(read_file(dir / "a.jsonl") == "{\"amount\":5}\n");
  CHECK(read_file(dir / "b.jsonl").empty());
  runs = runs_json(state);
  REQUIRE(runs["pending"].size() == 1);
  CHECK(runs["pending"][0]["node"] == "finance");
  auto finance = run_loom({"approve", state, "finance", "-q"});
  INFO(finance.err);
  CHECK(finance.status == 0);
  CHECK(read_file(dir / "b.jsonl") == "{\"amount\":5}\n");
  fs::remove_all(dir);
}

TEST_CASE("a deadline that passes while the run is stopped applies when it resumes" * doctest::timeout(300)) {
  auto dir = fresh_dir("timeout");
  auto graph = write_graph(dir, 1, "timeout_s: 2, on_timeout: reject");
  auto state = (dir / "state").string();
  auto first = run_loom({"run", graph.string(), "-q", "--state", state, "--detach-on-pause"});
  INFO(first.err);
  REQUIRE(first.status == 3);
  auto deadline = runs_json(state)["pending"][0]["deadline_unix_ms"].get<std::int64_t>();
  CHECK(deadline > 0);
  // Past the deadline (wall clock), with no process running the run.
  for (;;) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
    if (now > deadline + 50) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto resumed = run_loom({"resume", state, "-q"});
  INFO(resumed.err);
  CHECK(resumed.status == 0);
  CHECK(read_file(dir / "out.jsonl").empty());
  auto rejected = nlohmann::json::parse(read_file(dir / "rejected.jsonl"));
  CHECK(rejected["value"] == 0);
  CHECK(rejected["by"] == "timeout");
  CHECK(rejected["reason"] == "no decision within 2 s");
  fs::remove_all(dir);
}

TEST_CASE("max_pending holds input back; --all decides every pending one, in id order" * doctest::timeout(300)) {
  auto dir = fresh_dir("max");
  auto graph = write_graph(dir, 5, "max_pending: 2");
  auto state = (dir / "state").string();
  auto first = run_loom({"run", graph.string(), "-q", "--state", state, "--detach-on-pause"});
  INFO(first.err);
  REQUIRE(first.status == 3);
  CHECK(pending_ids(runs_json(state)) == std::vector<std::uint64_t>{0, 1});
  auto two = run_loom({"approve", state, "review"});  // two pending: which one?
  CHECK(two.status == 2);
  CHECK(two.err.find("give --id N (repeatable) or --all") != std::string::npos);
  auto r = run_loom({"approve", state, "review", "--all", "-q"});
  INFO(r.err);
  CHECK(r.status == 3);
  CHECK(pending_ids(runs_json(state)) == std::vector<std::uint64_t>{2, 3});
  r = run_loom({"approve", state, "review", "--all", "-q"});
  CHECK(r.status == 3);
  CHECK(pending_ids(runs_json(state)) == std::vector<std::uint64_t>{4});
  r = run_loom({"approve", state, "review", "--all", "-q"});
  CHECK(r.status == 0);
  CHECK(read_file(dir / "out.jsonl") == "0\n1\n2\n3\n4\n");
  fs::remove_all(dir);
}

TEST_CASE("what loom approve and loom run refuse about decisions" * doctest::timeout(120)) {
  auto dir = fresh_dir("refuse");
  auto graph = write_graph(dir, 2);
  auto no_state = run_loom({"run", graph.string(), "-q"});
  CHECK(no_state.status == 2);
  CHECK(no_state.err.find("graph.yaml:4:3: node `review` (human.approve) waits for decisions") != std::string::npos);
  CHECK(no_state.err.find("--state DIR") != std::string::npos);
  auto detach = run_loom({"run", graph.string(), "-q", "--detach-on-pause"});
  CHECK(detach.status == 2);
  CHECK(detach.err.find("--detach-on-pause needs --state DIR") != std::string::npos);
  auto state = (dir / "state").string();
  REQUIRE(run_loom({"run", graph.string(), "-q", "--state", state, "--detach-on-pause"}).status == 3);
  auto unknown = run_loom({"approve", state, "ok"});
  CHECK(unknown.status == 2);
  CHECK(unknown.err.find("node `ok` has no pending decision") != std::string::npos);
  CHECK(unknown.err.find("pending: `review` (ids 0, 1)") != std::string::npos);
  auto bad_id = run_loom({"approve", state, "review", "--id", "9"});
  CHECK(bad_id.status == 2);
  CHECK(bad_id.err.find("no pending decision 9") != std::string::npos);
  auto bad_json = run_loom({"approve", state, "review", "--id", "0", "--value", "{nope"});
  CHECK(bad_json.status == 2);
  CHECK(bad_json.err.find("--value") != std::string::npos);
  auto recorded = run_loom({"approve", state, "review", "--id", "0", "--no-resume"});
  CHECK(recorded.status == 0);
  auto twice = run_loom({"approve", state, "review", "--id", "0", "--reject"});
  CHECK(twice.status == 2);
  CHECK(twice.err.find("was already given (approve by") != std::string::npos);
  auto runs = run_loom({"runs", state});
  CHECK(runs.out.find("[approve by") != std::string::npos);  // recorded, not yet taken
  fs::remove_all(dir);
}

namespace {

// An agent whose model (scripted) asks for calc once, then answers with calc's result; calc needs approval.
fs::path write_agent_graph(const fs::path& dir) {
  auto file = dir / "agent.yaml";
  std::ofstream(file) << "graph: approve_tools\n"
                         "nodes:\n"
                         "  ask: {kind: source.value, params: {value: \"what is 6 times 7?\"}}\n"
                         "  calc: {kind: tool.calculator}\n"
                         "  agent:\n"
                         "    kind: agent.llm\n"
                         "    tools: [calc]\n"
                         "    params:\n"
                         "      approve_tools: [calc]\n"
                         "      rules:\n"
                         "        - {when: first, call: {tool: calc, arguments: {expression: \"6*7\"}}}\n"
                         "        - {when: after_tool, reply: \"the answer: {{tool.calc}}\"}\n"
                         "  out: {kind: sink.file, params: {path: \"" << (dir / "out.jsonl").string() << "\"}}\n"
                         "edges: [ask -> agent, agent -> out]\n";
  return file;
}

// The calls calc served, from a run's summary table ("calc  tool.calculator  IN  OUT ...").
long calc_calls(const std::string& err) {
  auto at = err.find("tool.calculator");
  REQUIRE_MESSAGE(at != std::string::npos, err);
  return std::stol(err.substr(at + std::string("tool.calculator").size()));
}

}  // namespace

TEST_CASE("agent.llm approve_tools: the tool runs only once approved, once, across a SIGKILL" *
          doctest::timeout(300)) {
  auto dir = fresh_dir("tools");
  auto graph = write_agent_graph(dir);
  auto state = dir / "state";
  {
    // A live run (no detach) pauses before the call; it is killed while it waits.
    child run({loom_binary(), "run", graph.string(), "--state", state.string()}, dir / "run.log");
    wait_for([&] { return fs::exists(state / "lock") && pending_ids(runs_json(state)).size() == 1; },
             "the agent's pending call");
    ::kill(run.pid, SIGKILL);
    CHECK(run.wait() == 128 + SIGKILL);
  }
  auto runs = runs_json(state);
  REQUIRE(runs["pending"].size() == 1);
  const auto& shown = runs["pending"][0]["shown"];
  CHECK(shown["tool"] == "calc");
  CHECK(shown["arguments"]["expression"] == "6*7");
  CHECK(read_file(dir / "out.jsonl").empty());
  auto r = run_loom({"approve", state.string(), "agent"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(calc_calls(r.err) == 1);  // the resumed run made the call, once
  auto out = read_file(dir / "out.jsonl");
  REQUIRE(std::count(out.begin(), out.end(), '\n') == 1);
  auto answer = nlohmann::json::parse(out);
  CHECK(answer["text"] == "the answer: {\"expression\":\"6*7\",\"result\":42}");
  CHECK(answer["tool_calls"] == 1);

  // Rejected: the tool never runs, the model reads why; edited: it runs with the person's arguments.
  for (auto verdict : {std::vector<std::string>{"--reject", "--reason", "not today"},
                       std::vector<std::string>{"--value", "{\"expression\": \"2+2\"}"}}) {
    fs::remove_all(state);
    fs::remove(dir / "out.jsonl");
    auto first = run_loom({"run", graph.string(), "--state", state.string(), "--detach-on-pause"});
    INFO(first.err);
    REQUIRE(first.status == 3);
    CHECK(calc_calls(first.err) == 0);
    std::vector<std::string> args{"approve", state.string(), "agent"};
    args.insert(args.end(), verdict.begin(), verdict.end());
    auto decided = run_loom(args);
    INFO(decided.err);
    REQUIRE(decided.status == 0);
    auto text = nlohmann::json::parse(read_file(dir / "out.jsonl"))["text"].get<std::string>();
    if (verdict[0] == "--reject") {
      CHECK(calc_calls(decided.err) == 0);
      CHECK(text.find("the call was rejected by ") != std::string::npos);
      CHECK(text.find(": not today") != std::string::npos);
    } else {
      CHECK(calc_calls(decided.err) == 1);
      CHECK(text == "the answer: {\"expression\":\"2+2\",\"result\":4}");
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("approve_tools names only the node's tools, and needs --state" * doctest::timeout(120)) {
  auto dir = fresh_dir("tools-refuse");
  auto graph = write_agent_graph(dir);
  auto no_state = run_loom({"run", graph.string(), "-q"});
  CHECK(no_state.status == 2);
  CHECK(no_state.err.find("node `agent` (agent.llm with approve_tools) waits for decisions") != std::string::npos);
  auto text = read_file(graph);
  text.replace(text.find("approve_tools: [calc]"), std::string("approve_tools: [calc]").size(), "approve_tools: [mail]");
  std::ofstream(graph) << text;
  auto bad = run_loom({"validate", graph.string()});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("agent.yaml:9:") != std::string::npos);
  CHECK(bad.err.find("approve_tools: `mail` is not one of its tools") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a live run takes every decision, also those recorded after the decisions table emptied" *
          doctest::timeout(300)) {
  auto dir = fresh_dir("live-seq");
  auto graph = write_graph(dir, 3);
  auto state = dir / "state";
  child run({loom_binary(), "run", graph.string(), "-q", "--state", state.string()}, dir / "run.log");
  wait_for([&] { return fs::exists(state / "lock") && pending_ids(runs_json(state)).size() == 3; },
           "three pending decisions");
  // One at a time, each taken (a snapshot deletes its row) before the next is recorded.
  for (std::uint64_t id : {2, 0, 1}) {
    auto r = run_loom({"approve", state.string(), "review", "--id", std::to_string(id)});
    INFO(r.err);
    REQUIRE(r.status == 0);
    if (id != 1)
      wait_for([&] {
        auto ids = pending_ids(runs_json(state));
        return std::find(ids.begin(), ids.end(), id) == ids.end();
      }, "decision " + std::to_string(id) + " taken");
  }
  CHECK(run.wait(std::chrono::seconds(60)) == 0);
  CHECK(read_file(dir / "out.jsonl") == "2\n0\n1\n");
  fs::remove_all(dir);
}

TEST_CASE("the live view's POST /decide past its limits: 413, 400, 409, and nothing recorded" * doctest::timeout(120)) {
  auto dir = fresh_dir("ui-door");
  auto graph = write_graph(dir, 1);
  auto state = dir / "state";
  child run({loom_binary(), "run", graph.string(), "-q", "--state", state.string(), "--ui", "127.0.0.1:0"},
            dir / "run.log");
  int port = 0;
  wait_for([&] {
    auto log = read_file(dir / "run.log");
    auto at = log.find("at http://127.0.0.1:");
    if (at == std::string::npos) return false;
    port = std::stoi(log.substr(at + std::string("at http://127.0.0.1:").size()));
    return fs::exists(state / "lock") && pending_ids(runs_json(state)).size() == 1;
  }, "the live view and the pending decision");
  httplib::Client ui("127.0.0.1", port);
  auto post = [&](const std::string& body) { return ui.Post("/decide", body, "application/json"); };
  auto big = post(std::string(70 * 1024, ' ') + R"({"instance": 1, "id": 0, "verdict": "approve"})");
  REQUIRE(big);
  CHECK(big->status == 413);
  auto bad_json = post("{nope");
  REQUIRE(bad_json);
  CHECK(bad_json->status == 400);
  auto bad_verdict = post(R"({"instance": 1, "id": 0, "verdict": "maybe"})");
  REQUIRE(bad_verdict);
  CHECK(bad_verdict->status == 400);
  CHECK(bad_verdict->body.find("none of approve, reject, edit") != std::string::npos);
  auto not_pending = post(R"({"instance": 1, "id": 7, "verdict": "approve"})");
  REQUIRE(not_pending);
  CHECK(not_pending->status == 409);
  CHECK(not_pending->body.find("decision 7 of instance 1 is not pending") != std::string::npos);
  // The body as loom serve's approvals read it (runtime/http/decision_body.hpp): a node's name for the instance.
  auto by_name = post(R"({"node": "review", "id": 7, "verdict": "approve"})");
  REQUIRE(by_name);
  CHECK(by_name->status == 409);
  CHECK(by_name->body.find("node `review` has no pending decision 7") != std::string::npos);
  auto reject_with_value = post(R"({"node": "review", "id": 0, "verdict": "reject", "value": 1})");
  REQUIRE(reject_with_value);
  CHECK(reject_with_value->status == 400);
  // Nothing was recorded: the decision is still open, with no verdict waiting for it.
  auto runs = runs_json(state);
  REQUIRE(runs["pending"].size() == 1);
  CHECK_FALSE(runs["pending"][0].contains("decided"));
  // A good one goes through, once.
  auto ok = post(R"({"instance": 1, "id": 0, "verdict": "approve"})");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  auto twice = post(R"({"instance": 1, "id": 0, "verdict": "reject"})");
  REQUIRE(twice);
  CHECK(twice->status == 409);
  CHECK(run.wait(std::chrono::seconds(60)) == 0);
  CHECK(read_file(dir / "out.jsonl") == "0\n");
  fs::remove_all(dir);
}
