// tests/cluster/durable_cluster_test.cpp: durable cluster runs (docs/durability.md, "Cluster runs") with real
// `loom worker` processes on 127.0.0.1: the driver of `loom run --cluster C --state DIR`, whose pipeline
// crosses between two hosts at every edge, is killed with SIGKILL at several moments (once more during a
// resume), and `loom resume DIR` re-deploys on the same workers: the output file equals an uninterrupted
// run's, byte for byte. A human.approve on one worker decided with `loom approve`, live and after the
// driver's death; the same with --detach-on-pause (exit 3, then `loom approve` resumes it). And a bad
// cluster file, which leaves no state.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/cli/child.hpp"
#include "tests/cluster/harness.hpp"

namespace fs = std::filesystem;
using loom::test::child;
using loom::test::cluster::cluster_dir;
using loom::test::cluster::free_port;
using loom::test::cluster::worker;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

// The durable pipeline of tests/cli/durable_test.cpp (a batch, a split that leaves committed values unsent,
// a throttle so the run lasts about three seconds, a gather of 3, a file), its nodes alternating between
// hosts a and b, so every edge crosses the wire and every barrier travels on it.
std::string pipeline(const fs::path& out) {
  return "graph: durable\n"
         "defaults: {capacity: 8}\n"
         "nodes:\n"
         "  src: {kind: source.sequence, params: {count: 20000}, placement: {host: a}}\n"
         "  batch: {kind: flow.batch, params: {size: 7}, placement: {host: b}}\n"
         "  split: {kind: flow.jq, params: {program: \".[]\"}, placement: {host: a}}\n"
         "  pace: {kind: flow.throttle, params: {rate: 7000}, placement: {host: b}}\n"
         "  fwd: {kind: flow.forward, placement: {host: a}}\n"
         "  gather: {kind: flow.gather, params: {count: 3}, placement: {host: b}}\n"
         "  sink: {kind: sink.file, params: {path: " +
         out.string() +
         "}, placement: {host: a}}\n"
         "edges: [src -> batch, batch -> split, split -> pace, pace -> fwd, fwd -> gather, gather -> sink]\n";
}

}  // namespace

TEST_CASE("a cluster run's driver killed with SIGKILL at several moments, then loom resume, writes the file exactly" *
          doctest::timeout(600)) {
  cluster_dir d("durable");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto ref_graph = d.write("ref.yaml", pipeline(d.dir / "ref.jsonl"));
  auto t0 = loom::test::clock_type::now();
  auto ref = run_process({loom_binary(), "run", ref_graph.string(), "--cluster", cluster.string(), "-q"},
                         process_options{std::chrono::milliseconds(120000)});
  INFO(ref.err);
  REQUIRE(ref.status == 0);
  auto span = std::chrono::duration_cast<std::chrono::milliseconds>(loom::test::clock_type::now() - t0);
  auto expect = loom::test::read_file(d.dir / "ref.jsonl");
  REQUIRE(expect.size() > 50000);

  int killed = 0;
  for (double f : {0.1, 0.4, 0.7}) {
    CAPTURE(f);
    auto name = "at-" + std::to_string(static_cast<int>(f * 100));
    auto out = d.dir / (name + ".jsonl");
    auto graph = d.write(name + ".yaml", pipeline(out));
    auto state = d.dir / (name + "-state");
    {
      child run({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "-q", "--state", state.string(),
                 "--checkpoint-every", "100ms"},
                d.dir / (name + ".log"));
      auto after = std::chrono::milliseconds(static_cast<long>(f * static_cast<double>(span.count())));
      if (run.kill_when([&] { return fs::exists(state / "lock"); }, after)) ++killed;
    }
    if (f == 0.4) {
      // A second kill, during the resume's run (once the workers have given the dead run up and started it).
      auto log = d.dir / (name + "-resume1.log");
      child again({loom_binary(), "resume", state.string()}, log);
      auto started = [&] { return loom::test::read_file(log).find("started on 2 workers") != std::string::npos; };
      if (again.kill_when(started, std::chrono::milliseconds(span.count() / 3))) ++killed;
    }
    auto runs = run_process({loom_binary(), "runs", state.string()});
    INFO(runs.out << runs.err);
    CHECK(runs.status == 0);
    auto resumed = run_process({loom_binary(), "resume", state.string()}, process_options{std::chrono::milliseconds(120000)});
    INFO(resumed.err);
    REQUIRE(resumed.status == 0);
    // It ran on the workers again, from a snapshot the driver kept (not from the start).
    CHECK(resumed.err.find("resuming") != std::string::npos);
    CHECK(resumed.err.find("started on 2 workers") != std::string::npos);
    CHECK(loom::test::read_file(out) == expect);
  }
  CHECK(killed >= 3);
}

TEST_CASE("a cluster run waits for people: loom approve decides a live run's human.approve on another host, and "
          "one whose driver was killed is resumed by the decision, each value once" * doctest::timeout(300)) {
  cluster_dir d("durable-approve");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = [&](const std::string& name) {
    return d.write(name + ".yaml", "graph: ap\nnodes:\n"
                                   "  src: {kind: source.sequence, params: {count: 4}, placement: {host: a}}\n"
                                   "  review: {kind: human.approve, placement: {host: b}}\n"
                                   "  ok: {kind: sink.file, params: {path: " + (d.dir / (name + "-ok.jsonl")).string() +
                                   "}, placement: {host: a}}\n"
                                   "  no: {kind: sink.file, params: {path: " + (d.dir / (name + "-no.jsonl")).string() +
                                   "}, placement: {host: a}}\n"
                                   "edges: [src -> review, review.out -> ok, review.rejected -> no]\n");
  };
  auto pending = [](const fs::path& state, const std::string& id) {
    auto r = run_process({loom_binary(), "runs", state.string()});
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string node, word, n;
      if (words >> node >> word >> n && node == "review" && word == "id" && n == id) return true;
    }
    return false;
  };
  auto wait_until = [&](auto cond, const fs::path& log, const fs::path& state) {
    auto end = loom::test::clock_type::now() + std::chrono::seconds(60);
    while (!cond()) {
      REQUIRE_MESSAGE(loom::test::clock_type::now() < end,
                      loom::test::read_file(log) << run_process({loom_binary(), "runs", state.string()}).out);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  };
  auto approve = [](const fs::path& state, std::vector<std::string> more) {
    std::vector<std::string> args{loom_binary(), "approve", state.string(), "review"};
    args.insert(args.end(), more.begin(), more.end());
    auto r = run_process(args, process_options{std::chrono::milliseconds(120000)});
    INFO(r.err);
    CHECK(r.status == 0);
    return r;
  };

  // Live: the decisions reach the worker of `review` through the driver; the run ends on its own.
  auto live_state = d.dir / "live-state";
  {
    child run({loom_binary(), "run", graph("live").string(), "--cluster", cluster.string(), "--state",
               live_state.string()},
              d.dir / "live.log");
    wait_until([&] { return pending(live_state, "3"); }, d.dir / "live.log", live_state);
    approve(live_state, {"--id", "0"});
    approve(live_state, {"--id", "1", "--reject", "--reason", "no"});
    approve(live_state, {"--id", "2", "--value", "\"edited\""});
    approve(live_state, {"--id", "3"});
    CHECK(run.wait() == 0);
  }
  CHECK(loom::test::read_file(d.dir / "live-ok.jsonl") == "0\n\"edited\"\n3\n");
  CHECK(loom::test::read_file(d.dir / "live-no.jsonl").find("{\"value\":1,\"reason\":\"no\"") == 0);

  // Killed while it waits, after one decision was taken: `loom approve --all` records the rest and resumes
  // the run on the workers (once they have given the dead run up).
  auto dead_state = d.dir / "dead-state";
  {
    child run({loom_binary(), "run", graph("dead").string(), "--cluster", cluster.string(), "-q", "--state",
               dead_state.string(), "--checkpoint-every", "100ms"},
              d.dir / "dead.log");
    wait_until([&] { return pending(dead_state, "3"); }, d.dir / "dead.log", dead_state);
    approve(dead_state, {"--id", "0"});
    wait_until([&] { return !pending(dead_state, "0"); }, d.dir / "dead.log", dead_state);  // taken, and a snapshot shows it
    run.kill_when([] { return true; }, std::chrono::milliseconds(0));
  }
  auto resumed = approve(dead_state, {"--all"});
  CHECK(resumed.err.find("started on 2 workers") != std::string::npos);
  CHECK(loom::test::read_file(d.dir / "dead-ok.jsonl") == "0\n1\n2\n3\n");
  CHECK(loom::test::read_file(d.dir / "dead-no.jsonl").empty());
}

TEST_CASE("a cluster run with --detach-on-pause exits 3 once it waits for people only; loom approve resumes it on "
          "the workers; a bad cluster file leaves no state" * doctest::timeout(300)) {
  cluster_dir d("durable-detach");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto out = d.dir / "out.jsonl";
  auto graph = d.write("g.yaml", "graph: g\nnodes:\n"
                                 "  src: {kind: source.sequence, params: {count: 3}, placement: {host: a}}\n"
                                 "  review: {kind: human.approve, placement: {host: b}}\n"
                                 "  sink: {kind: sink.file, params: {path: " + out.string() + "}, placement: {host: a}}\n"
                                 "edges: [src -> review -> sink]\n");
  auto state = d.dir / "st";
  auto paused = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--state",
                             state.string(), "--detach-on-pause", "-q"},
                            process_options{std::chrono::milliseconds(60000)});
  INFO(paused.err);
  CHECK(paused.status == 3);
  CHECK(paused.err.find("paused: decisions pending: 3 at `review` (ids 0, 1, 2)") != std::string::npos);
  CHECK(loom::test::read_file(out).empty());
  auto resumed = run_process({loom_binary(), "approve", state.string(), "review", "--all"},
                             process_options{std::chrono::milliseconds(120000)});
  INFO(resumed.err);
  CHECK(resumed.status == 0);
  CHECK(loom::test::read_file(out) == "0\n1\n2\n");
  auto plain = d.write("p.yaml", "graph: p\nnodes:\n  src: {kind: source.sequence, params: {count: 3}}\n"
                                 "  sink: {kind: sink.count}\nedges: [src -> sink]\n");
  auto bad = run_process({loom_binary(), "run", plain.string(), "--cluster", plain.string(), "--state",
                          (d.dir / "st3").string()});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("p.yaml:1:1: error: unknown top-level key `graph` in a cluster file") != std::string::npos);
  CHECK(!fs::exists(d.dir / "st3"));
}
