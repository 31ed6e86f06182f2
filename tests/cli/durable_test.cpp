// tests/cli/durable_test.cpp: durable runs with the real `loom` binary (docs/durability.md). A run with
// `--state DIR` killed with SIGKILL at ten moments (one of them a second kill, during its resume), then
// `loom resume DIR` to the end: the output file equals an uninterrupted run's, byte for byte. And what
// `loom resume` refuses (a foreign file, an edited graph, a live run), `loom run --state` over a run, and
// `loom runs`.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/cli/child.hpp"
#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using loom::test::child;
using loom::test::loom_binary;
using loom::test::read_file;
using loom::test::process_options;
using loom::test::run_process;

namespace {

using clock_type = loom::test::clock_type;

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("loom-durable-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// 20,000 values through a batch of 7, split again (flow.jq `.[]`: seven values per input, more than its
// consumer's credit, so committed values wait unsent in its outbox), a throttle (so that the run lasts about
// three seconds), a forward and a gather of 3 to a file, on small edges (values wait on every link). Every
// kind here keeps its state in checkpoints, the sink its file length.
std::string pipeline(int rate = 7000) {
  return "graph: durable\n"
         "defaults: {capacity: 8}\n"
         "nodes:\n"
         "  src: {kind: source.sequence, params: {count: 20000}}\n"
         "  batch: {kind: flow.batch, params: {size: 7}}\n"
         "  split: {kind: flow.jq, params: {program: \".[]\"}}\n"
         "  pace: {kind: flow.throttle, params: {rate: " +
         std::to_string(rate) +
         "}}\n"
         "  fwd: {kind: flow.forward}\n"
         "  gather: {kind: flow.gather, params: {count: 3}}\n"
         "  sink: {kind: sink.file, params: {path: out.jsonl}}\n"
         "edges: [src -> batch, batch -> split, split -> pace, pace -> fwd, fwd -> gather, gather -> sink]\n";
}

}  // namespace

TEST_CASE("loom run --state killed with SIGKILL at ten moments, then loom resume, writes the file exactly" *
          doctest::timeout(900)) {
  auto root = fresh_dir("kill");
  // The uninterrupted run: the reference file, and how long a run takes here.
  fs::create_directories(root / "ref");
  write_file(root / "ref" / "graph.yaml", pipeline());
  auto t0 = clock_type::now();
  auto ref = run_process({loom_binary(), "run", (root / "ref" / "graph.yaml").string(), "-q"},
                         process_options{std::chrono::milliseconds(120000)});
  INFO(ref.err);
  REQUIRE(ref.status == 0);
  auto span = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
  auto expect = read_file(root / "ref" / "out.jsonl");
  REQUIRE(expect.size() > 50000);

  // Moments after the run holds its lock (its state file made), as fractions of the reference run's span.
  // The moments are only spread by time: what is checked (the file) does not depend on where they land.
  int killed = 0;
  for (double f : {0.0, 0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.85, 0.95}) {
    CAPTURE(f);
    auto dir = root / ("at-" + std::to_string(static_cast<int>(f * 100)));
    fs::create_directories(dir);
    write_file(dir / "graph.yaml", pipeline());
    auto state = dir / "state";
    {
      child run({loom_binary(), "run", (dir / "graph.yaml").string(), "-q", "--state", state.string(),
                 "--checkpoint-every", "50ms"},
                dir / "run.log");
      auto after = std::chrono::milliseconds(static_cast<long>(f * static_cast<double>(span.count())));
      if (run.kill_when([&] { return fs::exists(state / "lock"); }, after)) ++killed;
    }
    MESSAGE("killed at " << f << " of the run: " << (fs::exists(dir / "out.jsonl") ? fs::file_size(dir / "out.jsonl") : 0)
                         << " of " << expect.size() << " bytes written");
    if (f == 0.3) {
      // A second kill, during the resume.
      child again({loom_binary(), "resume", state.string(), "-q"}, dir / "resume1.log");
      if (again.kill_when([] { return true; }, std::chrono::milliseconds(span.count() * 4 / 10))) ++killed;
    }
    auto runs = run_process({loom_binary(), "runs", state.string()});
    INFO(runs.out << runs.err);
    CHECK(runs.status == 0);
    auto resumed = run_process({loom_binary(), "resume", state.string(), "-q"},
                               process_options{std::chrono::milliseconds(120000)});
    INFO(resumed.err);
    REQUIRE(resumed.status == 0);
    CHECK(read_file(dir / "out.jsonl") == expect);
    // Finished: a second resume says so and runs nothing.
    auto done = run_process({loom_binary(), "resume", state.string()});
    CHECK(done.status == 0);
    CHECK(done.err.find("finished; there is nothing to resume") != std::string::npos);
  }
  // The first moments come well before the run's end, whatever the machine's speed.
  CHECK(killed >= 5);
  fs::remove_all(root);
}

TEST_CASE("a loom run --state killed while it writes a snapshot resumes from the one before, exactly" *
          doctest::timeout(300)) {
  auto root = fresh_dir("torn");
  fs::create_directories(root / "ref");
  write_file(root / "ref" / "graph.yaml", pipeline());
  auto ref = run_process({loom_binary(), "run", (root / "ref" / "graph.yaml").string(), "-q"},
                         process_options{std::chrono::milliseconds(120000)});
  REQUIRE(ref.status == 0);
  auto expect = read_file(root / "ref" / "out.jsonl");
  // The store's test hook: SIGKILL right after the k-th row the process inserts into a snapshot, before the
  // commit (a snapshot of this graph has 7 parts and a few links: k = 40 lands in about the fourth).
  for (int k : {3, 40, 200}) {
    CAPTURE(k);
    auto dir = root / ("k-" + std::to_string(k));
    fs::create_directories(dir);
    write_file(dir / "graph.yaml", pipeline());
    auto state = dir / "state";
    ::setenv("LOOM_TEST_CRASH_IN_SNAPSHOT", std::to_string(k).c_str(), 1);
    child run({loom_binary(), "run", (dir / "graph.yaml").string(), "-q", "--state", state.string(),
               "--checkpoint-every", "50ms"},
              dir / "run.log");
    ::unsetenv("LOOM_TEST_CRASH_IN_SNAPSHOT");
    CHECK(run.wait() == 128 + SIGKILL);
    auto runs = run_process({loom_binary(), "runs", state.string(), "--json"});
    REQUIRE(runs.status == 0);
    auto j = nlohmann::json::parse(runs.out);
    CHECK(j["status"] == "running");
    if (k > 20) CHECK_FALSE(j["snapshots"].empty());  // the ones before the torn one
    auto resumed = run_process({loom_binary(), "resume", state.string(), "-q"},
                               process_options{std::chrono::milliseconds(120000)});
    INFO(resumed.err);
    REQUIRE(resumed.status == 0);
    CHECK(read_file(dir / "out.jsonl") == expect);
  }
  fs::remove_all(root);
}

TEST_CASE("a loom run --state stopped by SIGINT says interrupted, and loom resume finishes it exactly" *
          doctest::timeout(300)) {
  auto root = fresh_dir("sigint");
  fs::create_directories(root / "ref");
  write_file(root / "ref" / "graph.yaml", pipeline());
  auto ref = run_process({loom_binary(), "run", (root / "ref" / "graph.yaml").string(), "-q"},
                         process_options{std::chrono::milliseconds(120000)});
  REQUIRE(ref.status == 0);
  write_file(root / "graph.yaml", pipeline());
  auto state = root / "state";
  process_options o;
  o.deadline = std::chrono::milliseconds(120000);
  o.sigint_after = std::chrono::milliseconds(0);
  o.sigint_when = [&] { return fs::exists(root / "out.jsonl") && fs::file_size(root / "out.jsonl") > 0; };
  auto stopped = run_process({loom_binary(), "run", (root / "graph.yaml").string(), "-q", "--state", state.string(),
                              "--checkpoint-every", "50ms"},
                             o);
  INFO(stopped.err);
  REQUIRE(stopped.status == 130);
  auto runs = run_process({loom_binary(), "runs", state.string(), "--json"});
  REQUIRE(runs.status == 0);
  auto j = nlohmann::json::parse(runs.out);
  CHECK(j["status"] == "interrupted");
  CHECK(j["live"] == false);
  CHECK_FALSE(j["snapshots"].empty());
  auto resumed = run_process({loom_binary(), "resume", state.string(), "-q"}, process_options{std::chrono::milliseconds(120000)});
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK(read_file(root / "out.jsonl") == read_file(root / "ref" / "out.jsonl"));
  auto done = run_process({loom_binary(), "runs", state.string(), "--json"});
  CHECK(nlohmann::json::parse(done.out)["status"] == "finished");
  fs::remove_all(root);
}

TEST_CASE("a link that ended before the snapshot stays ended on resume: every value once" * doctest::timeout(300)) {
  // Two sources into one sink: `short` ends at once, so every snapshot records its link as ended (not as a
  // stream whose end is still to come); the long one is throttled. Order across two links is not promised:
  // the lines are compared sorted.
  auto root = fresh_dir("ended");
  auto yaml = [](const std::string& out) {
    return "graph: ended\n"
           "defaults: {capacity: 8}\n"
           "nodes:\n"
           "  short: {kind: source.sequence, params: {count: 3}}\n"
           "  long: {kind: source.sequence, params: {count: 20000, start: 100}}\n"
           "  pace: {kind: flow.throttle, params: {rate: 7000}}\n"
           "  sink: {kind: sink.file, params: {path: " + out + "}}\n"
           "edges: [long -> pace, pace -> sink, short -> sink]\n";
  };
  auto sorted_lines = [](const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  write_file(root / "graph.yaml", yaml("out.jsonl"));
  auto state = root / "state";
  {
    child run({loom_binary(), "run", (root / "graph.yaml").string(), "-q", "--state", state.string(),
               "--checkpoint-every", "50ms"},
              root / "run.log");
    // Killed once half the values are in the file (the short source long done).
    CHECK(run.kill_when([&] { return fs::exists(root / "out.jsonl") && fs::file_size(root / "out.jsonl") > 50000; },
                        std::chrono::milliseconds(0)));
  }
  auto resumed = run_process({loom_binary(), "resume", state.string(), "-q"}, process_options{std::chrono::milliseconds(60000)});
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  auto got = sorted_lines(read_file(root / "out.jsonl"));
  std::vector<std::string> want;
  for (int i = 0; i < 3; ++i) want.push_back(std::to_string(i));
  for (int i = 100; i < 20100; ++i) want.push_back(std::to_string(i));
  std::sort(want.begin(), want.end());
  CHECK(got.size() == want.size());
  CHECK(got == want);
  fs::remove_all(root);
}

TEST_CASE("loom resume refuses a foreign file, an edited graph and a live run; loom runs shows the run" *
          doctest::timeout(300)) {
  auto root = fresh_dir("refuse");
  write_file(root / "graph.yaml", pipeline(2800));  // about 7 s: long enough to look at it live
  auto state = root / "state";

  // A live run: `loom runs` names its pid, and a resume meanwhile is refused.
  {
    child run({loom_binary(), "run", (root / "graph.yaml").string(), "-q", "--state", state.string(),
               "--checkpoint-every", "50ms"},
              root / "run.log");
    auto pid = std::to_string(run.pid);
    // Once a snapshot is in, look at it.
    bool seen = false;
    for (auto t0 = clock_type::now(); clock_type::now() - t0 < std::chrono::seconds(60);) {
      auto r = run_process({loom_binary(), "runs", state.string(), "--json"});
      if (r.status == 0) {
        auto j = nlohmann::json::parse(r.out);
        if (!j["snapshots"].empty()) {
          CHECK(j["status"] == "running");
          CHECK(j["live"] == true);
          CHECK(j["pid"] == pid);
          CHECK(j["graph"] == fs::absolute(root / "graph.yaml").string());
          CHECK(j["snapshots"][0]["epoch"].get<std::uint64_t>() >= 1);
          seen = true;
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE_MESSAGE(seen, read_file(root / "run.log"));
    auto text = run_process({loom_binary(), "runs", state.string()});
    INFO(text.out << text.err);
    CHECK(text.status == 0);
    CHECK(text.out.find("running (live: pid " + pid) != std::string::npos);
    CHECK(text.out.find("snapshots: ") != std::string::npos);
    auto busy = run_process({loom_binary(), "resume", state.string()});
    CHECK(busy.status == 2);
    CHECK(busy.err.find("belongs to a live run (pid " + pid) != std::string::npos);
    // And a new run into the same DIR is refused.
    auto again = run_process({loom_binary(), "run", (root / "graph.yaml").string(), "--state", state.string()});
    CHECK(again.status == 2);
    CHECK(again.err.find("already holds a run's state") != std::string::npos);
    CHECK(run.kill_when([] { return true; }, std::chrono::milliseconds(0)));
  }
  auto after_kill = run_process({loom_binary(), "runs", state.string()});
  CHECK(after_kill.out.find("status:    running (no process holds it: it was killed") != std::string::npos);

  // The graph edited after the kill: refused, naming the line.
  auto text = read_file(root / "graph.yaml");
  auto edited = text;
  edited.replace(edited.find("rate: 2800"), 10, "rate: 3500");
  write_file(root / "graph.yaml", edited);
  auto refused = run_process({loom_binary(), "resume", state.string()});
  INFO(refused.err);
  CHECK(refused.status == 2);
  CHECK(refused.err.find("cannot be resumed by this loom: the graph files") != std::string::npos);
  CHECK(refused.err.find("differ at line 7") != std::string::npos);
  CHECK(refused.err.find("rate: 3500") != std::string::npos);
  // Put back, it resumes to the end.
  write_file(root / "graph.yaml", text);
  auto resumed = run_process({loom_binary(), "resume", state.string(), "-q"}, process_options{std::chrono::milliseconds(120000)});
  INFO(resumed.err);
  CHECK(resumed.status == 0);
  auto done = run_process({loom_binary(), "runs", state.string(), "--json"});
  CHECK(nlohmann::json::parse(done.out)["status"] == "finished");

  // A foreign file where the state should be.
  auto foreign = root / "foreign";
  fs::create_directories(foreign);
  write_file(foreign / "state.sqlite", "graph: not a database\n");
  auto f = run_process({loom_binary(), "resume", foreign.string()});
  CHECK(f.status == 2);
  CHECK(f.err.find("is not a loom state file (it is not a SQLite database)") != std::string::npos);
  auto fr = run_process({loom_binary(), "runs", foreign.string()});
  CHECK(fr.status == 2);
  auto none = run_process({loom_binary(), "resume", (root / "nothing").string()});
  CHECK(none.status == 2);
  CHECK(none.err.find("holds no loom state") != std::string::npos);

  // A cluster run with --state whose cluster file is not one: refused before any state is made.
  auto cluster = run_process({loom_binary(), "run", (root / "graph.yaml").string(), "--state",
                              (root / "c").string(), "--cluster", (root / "graph.yaml").string()});
  CHECK(cluster.status == 2);
  CHECK(cluster.err.find("graph.yaml") != std::string::npos);
  CHECK_FALSE(fs::exists(root / "c"));
  fs::remove_all(root);
}
