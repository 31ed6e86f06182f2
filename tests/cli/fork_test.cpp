// tests/cli/fork_test.cpp: `loom runs DIR --fork ID --to DIR2 --set ...`, `--pin`, `--unpin` and `--drop`
// with the real `loom` binary (docs/durability.md, "Fork, pin, drop"). A run is stopped midway, a snapshot
// pinned, and the run resumed past it; a fork of that snapshot with another flow.jq program, resumed to the
// end, writes the original's values up to one point and the new program's from there on, every value once;
// the original's state and file are not touched; the forks that cannot be are refused; the pinned snapshot
// outlives pruning until unpinned; a live run cannot be dropped and a dead one can.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

nlohmann::json runs_json(const fs::path& state) {
  auto r = run_process({loom_binary(), "runs", state.string(), "--json"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

// The snapshots as `loom runs --json` lists them, without their age (which grows).
nlohmann::json snapshots_of(const nlohmann::json& runs) {
  auto list = runs["snapshots"];
  for (auto& s : list) s.erase("age_ms");
  return list;
}

std::vector<std::int64_t> snapshot_ids(const nlohmann::json& runs) {
  std::vector<std::int64_t> ids;
  for (const auto& s : runs["snapshots"]) ids.push_back(s["id"].get<std::int64_t>());
  return ids;
}

// The graph file says count 50000 and `. + 5`; the run sets count 20000 and `. + 1000000` (and a slower
// rate) with --set, so a fork that lost the run's --sets would show (50,000 lines, or values + 5). The router
// sends everything to `default` (no value is `x`); a fork that gives it another route changes its ports.
const char* graph_yaml =
    "graph: fork\n"
    "defaults: {capacity: 8}\n"
    "nodes:\n"
    "  src: {kind: source.sequence, params: {count: 50000}}\n"
    "  pace: {kind: flow.throttle, params: {rate: 5000}}\n"
    "  map: {kind: flow.jq, params: {program: \". + 5\"}}\n"
    "  route: {kind: flow.router, params: {routes: {x: a}}}\n"
    "  sink: {kind: sink.file, params: {path: out.jsonl}}\n"
    "edges: [src -> pace, pace -> map, map -> route, route.default -> sink]\n";

constexpr long count = 20000, old_add = 1000000, new_add = 2000000;

}  // namespace

TEST_CASE("loom runs --fork resumes a snapshot with other params; --pin keeps a snapshot; --drop" *
          doctest::timeout(600)) {
  auto root = fs::temp_directory_path() / ("loom-fork-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  put(root / "graph.yaml", graph_yaml);
  auto state = root / "state";
  auto out = root / "out.jsonl";

  // The run (2,000 values a second), stopped by SIGINT once 2,048 records are in its file. Its older
  // snapshot of the two kept is pinned once no process runs it (so no pruning races the pin).
  process_options o;
  o.deadline = std::chrono::milliseconds(120000);
  o.sigint_after = std::chrono::milliseconds(0);
  o.sigint_when = [&] { return fs::exists(out) && fs::file_size(out) > 12000; };
  auto stopped =
      run_process({loom_binary(), "run", (root / "graph.yaml").string(), "-q", "--state", state.string(),
                   "--checkpoint-every", "50ms", "--keep", "2", "--set", "src.count=20000", "--set",
                   "map.program=. + 1000000", "--set", "pace.rate=2000"},
                  o);
  INFO(stopped.err);
  REQUIRE(stopped.status == 130);
  auto first = snapshot_ids(runs_json(state));
  REQUIRE(first.size() == 2);
  auto pinned = first[0];
  CAPTURE(pinned);
  auto pin = run_process({loom_binary(), "runs", state.string(), "--pin", std::to_string(pinned)});
  INFO(pin.err);
  REQUIRE(pin.status == 0);

  // Resumed, it runs until three more snapshots are in (so keep = 2 prunes past the pinned one), and while it
  // runs, a --drop is refused naming its pid.
  std::string live_pid;
  loom::test::process_result drop_live;
  o.sigint_when = [&] {
    auto r = run_process({loom_binary(), "runs", state.string(), "--json"});
    if (r.status != 0) return false;
    auto j = nlohmann::json::parse(r.out);
    auto ids = snapshot_ids(j);
    if (ids.empty() || ids.back() < pinned + 3 || !j.value("live", false)) return false;
    live_pid = j.value("pid", "");
    drop_live = run_process({loom_binary(), "runs", state.string(), "--drop"});
    return true;
  };
  auto again = run_process({loom_binary(), "resume", state.string(), "-q"}, o);
  INFO(again.err);
  REQUIRE(again.status == 130);

  // --drop of the live run: refused with its pid, nothing removed.
  CHECK(drop_live.status == 2);
  CHECK(drop_live.err.find("belongs to a live run (pid " + live_pid + " on ") != std::string::npos);
  CHECK_FALSE(live_pid.empty());

  // The pinned snapshot outlived pruning: three came after it, and keep = 2 left two of them besides it.
  auto j = runs_json(state);
  auto ids = snapshot_ids(j);
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] == pinned);
  CHECK(j["snapshots"][0]["pinned"] == true);
  CHECK(ids[1] > pinned + 1);  // the one right after it was pruned
  CHECK(j["snapshots"][1]["pinned"] == false);
  auto text = run_process({loom_binary(), "runs", state.string()});
  CHECK(text.out.find("(pinned)") != std::string::npos);

  // What the fork must leave as it was.
  auto state_bytes = slurp(state / "state.sqlite");
  auto out_bytes = slurp(out);
  auto snapshots_before = snapshots_of(j);
  auto fork_of = [&](const std::string& to, std::vector<std::string> sets, std::int64_t id) {
    std::vector<std::string> argv{loom_binary(),      "runs", state.string(),      "--fork",
                                  std::to_string(id), "--to", (root / to).string()};
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    return run_process(argv);
  };

  // Refused: the sink would write the run's own file (not moved, or moved onto it by another name).
  for (const auto& sets :
       {std::vector<std::string>{"map.program=. + 2000000"},
        std::vector<std::string>{"sink.path=" + (root / "sub" / ".." / "out.jsonl").string()}}) {
    auto same = fork_of("f-same", sets, pinned);
    INFO(same.err);
    CHECK(same.status == 2);
    CHECK(same.err.find("node `sink` (sink.file) would write") != std::string::npos);
    CHECK(same.err.find("--set sink.path=FILE") != std::string::npos);
    CHECK_FALSE(fs::exists(root / "f-same"));
  }
  // Refused: another route is another output port, so another expansion; named at the router's line.
  auto ports = fork_of("f-ports", {"route.routes={x: a, y: b}", "sink.path=f.jsonl"}, pinned);
  INFO(ports.err);
  CHECK(ports.status == 2);
  CHECK(ports.err.find("the expanded graphs and their kinds differ at line 4") != std::string::npos);
  CHECK(ports.err.find("the state file has `instance 3 route flow.router") != std::string::npos);
  CHECK(ports.err.find("the fork has `instance 3 route flow.router") != std::string::npos);
  CHECK_FALSE(fs::exists(root / "f-ports"));
  // Refused: replicas are the graph file's, not a param --set can change.
  auto replicas = fork_of("f-replicas", {"map.replicas=2", "sink.path=f.jsonl"}, pinned);
  CHECK(replicas.status == 2);
  CHECK(replicas.err.find("unknown param `replicas`") != std::string::npos);
  CHECK_FALSE(fs::exists(root / "f-replicas"));
  // Refused: no such snapshot (pruned), and a DIR2 that holds a run.
  auto gone = fork_of("f-gone", {"sink.path=f.jsonl"}, pinned + 1);
  CHECK(gone.status == 2);
  CHECK(gone.err.find("holds no complete snapshot " + std::to_string(pinned + 1)) != std::string::npos);
  auto onto = run_process({loom_binary(), "runs", state.string(), "--fork", std::to_string(pinned), "--to",
                           state.string(), "--set", "sink.path=f.jsonl"});
  CHECK(onto.status == 2);
  CHECK(onto.err.find("already holds a run's state") != std::string::npos);
  CHECK_FALSE(fs::exists(root / "f.jsonl"));

  // The fork: another program, the sink moved.
  auto forked =
      fork_of("fork", {"map.program=. + 2000000", "pace.rate=50000", "sink.path=fork.jsonl"}, pinned);
  INFO(forked.err);
  REQUIRE(forked.status == 0);
  // The sink's file starts as the first N bytes of the run's, N its checkpoint in the snapshot.
  auto at = forked.err.find("starts as the first ");
  REQUIRE(at != std::string::npos);
  auto n = std::stoul(forked.err.substr(at + 20));
  CAPTURE(n);
  CHECK(n > 0);
  CHECK(n % 8 == 0);  // whole records: 8 bytes each
  auto fj = runs_json(root / "fork");
  CHECK(fj["status"] == "forked");
  CHECK(fj["starts"] == 0);
  REQUIRE(fj["snapshots"].size() == 1);
  CHECK(fj["snapshots"][0]["epoch"] == snapshots_before[0]["epoch"]);
  CHECK(fj["forked_from"].get<std::string>().find(", snapshot " + std::to_string(pinned) + " (epoch") !=
        std::string::npos);

  // The original is as it was: its file, its snapshots, its state file's bytes.
  CHECK(slurp(state / "state.sqlite") == state_bytes);
  CHECK(slurp(out) == out_bytes);
  CHECK(snapshots_of(runs_json(state)) == snapshots_before);

  // Resumed to the end: the run's values (+ 1,000,000) up to one point K, the fork's (+ 2,000,000) from there
  // on: each of the 20,000 once, in order (the run's --set count kept).
  auto resumed = run_process({loom_binary(), "resume", (root / "fork").string(), "-q"},
                             process_options{std::chrono::milliseconds(120000)});
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  auto got = lines_of(slurp(root / "fork.jsonl"));
  REQUIRE(got.size() == static_cast<std::size_t>(count));
  long k = 0;
  while (k < count && got[static_cast<std::size_t>(k)] == std::to_string(k + old_add)) ++k;
  CAPTURE(k);
  CHECK(static_cast<unsigned long>(k) >= n / 8);  // the copied records are the run's
  CHECK(k < count);
  bool rest_new = true;
  for (long i = k; i < count; ++i)
    rest_new = rest_new && got[static_cast<std::size_t>(i)] == std::to_string(i + new_add);
  CHECK(rest_new);
  // The fork's file begins with the run's, byte for byte, up to the sink's checkpoint.
  REQUIRE(out_bytes.size() >= n);
  CHECK(slurp(root / "fork.jsonl").substr(0, n) == out_bytes.substr(0, n));
  CHECK(runs_json(root / "fork")["status"] == "finished");
  CHECK(slurp(state / "state.sqlite") == state_bytes);

  // Unpinned, the snapshot goes with the next pruning: the run resumed to the end prunes it.
  auto unpin = run_process({loom_binary(), "runs", state.string(), "--unpin", std::to_string(pinned)});
  CHECK(unpin.status == 0);
  CHECK(runs_json(state)["snapshots"][0]["pinned"] == false);
  auto finish = run_process({loom_binary(), "resume", state.string(), "-q"},
                            process_options{std::chrono::milliseconds(120000)});
  INFO(finish.err);
  REQUIRE(finish.status == 0);
  auto left = snapshot_ids(runs_json(state));
  CHECK(std::find(left.begin(), left.end(), pinned) == left.end());
  auto all = lines_of(slurp(out));
  REQUIRE(all.size() == static_cast<std::size_t>(count));
  CHECK(all.back() == std::to_string(count - 1 + old_add));
  auto bad_pin = run_process({loom_binary(), "runs", state.string(), "--pin", std::to_string(pinned)});
  CHECK(bad_pin.status == 2);
  CHECK(bad_pin.err.find("holds no complete snapshot") != std::string::npos);

  // --drop of a run that is not live: its files go, and DIR with them.
  auto drop = run_process({loom_binary(), "runs", state.string(), "--drop"});
  INFO(drop.err);
  CHECK(drop.status == 0);
  CHECK_FALSE(fs::exists(state));
  auto dropped = run_process({loom_binary(), "runs", state.string(), "--drop"});
  CHECK(dropped.status == 2);
  CHECK(dropped.err.find("holds no loom state") != std::string::npos);
  // The verbs one at a time.
  auto both = run_process({loom_binary(), "runs", (root / "fork").string(), "--drop", "--pin", "1"});
  CHECK(both.status == 2);
  CHECK(fs::exists(root / "fork" / "state.sqlite"));
  fs::remove_all(root);
}
