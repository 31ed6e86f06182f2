// tests/cluster/cluster_test.cpp: distributed runs with real processes on 127.0.0.1: `loom worker`s and a
// `loom run --cluster` driver. Exact outputs across hosts, a worker killed with SIGKILL, a driver killed,
// a worker that starts late or never, a slow consumer on another host, CurveZMQ refusal, garbage sent
// straight to a worker's socket, and what an idle worker's scheduler threads do.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "tests/cli/process.hpp"
#include "tests/cluster/harness.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace loom::test::cluster;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

// numbers on a -> double on b -> file on b: exact output crosses a host boundary.
const char* two_host_graph = R"(graph: two-hosts
nodes:
  numbers: {kind: source.sequence, params: {count: 5000}, placement: {host: a}}
  pass: {kind: flow.forward, placement: {host: b}}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}, placement: {host: b}}
edges:
  - numbers -> pass -> out
)";

// A run that lasts: 200 messages a second for 30 s, across both hosts.
const char* slow_graph = R"(graph: slow
nodes:
  numbers: {kind: source.sequence, params: {count: 6000}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 200}, placement: {host: b}}
  tally: {kind: sink.count, placement: {host: a}}
edges:
  - numbers -> pace -> tally
)";

// Runs two_host_graph from folder `d` on workers a and b (listening on ports pa and pb); the test stops
// unless the run ends ok.
loom::test::process_result run_two_hosts(cluster_dir& d, const worker& a, int pa, const worker& b, int pb) {
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("graph.yaml", two_host_graph);
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  REQUIRE(r.status == 0);
  return r;
}

}  // namespace

TEST_CASE("a graph runs across two worker processes with exact output" * doctest::timeout(60)) {
  cluster_dir d("exact");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto r = run_two_hosts(d, a, pa, b, pb);
  auto text = read_file(d.dir / "out/numbers.jsonl");
  std::istringstream lines(text);
  int expected = 0;
  for (std::string line; std::getline(lines, line); ++expected) REQUIRE(std::stoi(line) == expected);
  CHECK(expected == 5000);
  // sent = received on every edge, gathered from both hosts
  CHECK(table_row(r.err, "numbers") == "numbers source.sequence 0 5000");
  CHECK(table_row(r.err, "pass") == "pass flow.forward 5000 5000");
  CHECK(table_row(r.err, "out") == "out sink.file 5000 0");
}

namespace {
// The voluntary context switches of every thread of process `pid` so far (/proc/PID/task/*/status): how
// often its threads went to sleep.
long voluntary_switches(pid_t pid) {
  long total = 0;
  for (const auto& t : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task")) {
    std::istringstream in(read_file(t.path() / "status"));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) total += std::stol(line.substr(line.find(':') + 1));
  }
  return total;
}
}  // namespace

TEST_CASE("an idle worker's threads sleep until work comes; with --scheduler stealing they poll, and runs work with both" *
          doctest::timeout(60)) {
  cluster_dir d("scheduler");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir, {"--scheduler", "stealing"});
  // Idle for a second: the default (sharing) wakes for its main loop's 100 ms waits and little else; the
  // stealing scheduler's two threads wake every 10 ms or sooner to look for work (about 200 in a second).
  std::this_thread::sleep_for(300ms);
  auto a0 = voluntary_switches(a.pid()), b0 = voluntary_switches(b.pid());
  std::this_thread::sleep_for(1s);
  auto idle_a = voluntary_switches(a.pid()) - a0, idle_b = voluntary_switches(b.pid()) - b0;
  INFO("sharing: ", idle_a, " switches in 1 s; stealing: ", idle_b);
  CHECK(idle_a < 60);
  CHECK(idle_b > 100);
  auto r = run_two_hosts(d, a, pa, b, pb);
  CHECK(table_row(r.err, "out") == "out sink.file 5000 0");
  CHECK(run_process({loom_binary(), "worker", "--listen", "tcp://127.0.0.1:1", "--scheduler", "fifo"}).status != 0);
}

TEST_CASE("the example cluster pipeline runs with replicas spread over two workers" * doctest::timeout(60)) {
  cluster_dir d("replicas");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto r = run_process({loom_binary(), "run", (source_dir / "configs/cluster_pipeline.yaml").string(), "--cluster",
                        cluster.string(), "--set", "numbers.count=20000", "--set", "tally.expect=20000"});
  INFO(r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("work x2") != std::string::npos);
}

TEST_CASE("a worker killed with SIGKILL is found within 5 seconds; the others go back to waiting" *
          doctest::timeout(60)) {
  cluster_dir d("kill");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("slow.yaml", slow_graph);
  std::thread killer([&] {
    b.wait_for_log("deployed", 10s);
    std::this_thread::sleep_for(1s);
    b.kill9();
  });
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()});
  killer.join();
  INFO(r.err, "\n", a.log());
  CHECK(r.status == 1);
  CHECK(r.err.find("worker `b` at tcp://127.0.0.1:" + std::to_string(pb) + " lost") != std::string::npos);
  CHECK(r.err.find("nodes lost: pace") != std::string::npos);
  CHECK(r.seconds < 1 + 5 + 3);  // started, killed after ~1 s, found within 5 s, the rest stopped
  CHECK(a.wait_for_log("waiting for the next", 15s));
  CHECK(a.log().find("local part cancelled") != std::string::npos);  // not "local part done ()"
  CHECK(a.log().find("local part done ()") == std::string::npos);
  // worker a serves the next run
  auto alone = d.cluster({{"a", pa}});
  auto g2 = d.write("alone.yaml", "graph: alone\nnodes:\n  s: {kind: source.sequence}\n  c: {kind: sink.count, "
                                  "params: {expect: 10}}\nedges:\n  - s -> c\n");
  auto r2 = run_process({loom_binary(), "run", g2.string(), "--cluster", alone.string()});
  INFO(r2.err);
  CHECK(r2.status == 0);
}

TEST_CASE("a driver that dies makes its workers abandon the run and wait for the next" * doctest::timeout(60)) {
  cluster_dir d("driver");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("slow.yaml", slow_graph);
  pid_t driver = fork();
  if (driver == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(loom_binary().c_str(), loom_binary().c_str(), "run", graph.c_str(), "--cluster", cluster.c_str(), nullptr);
    _exit(127);
  }
  REQUIRE(a.wait_for_log("deployed", 10s));
  std::this_thread::sleep_for(1s);
  kill(driver, SIGKILL);
  waitpid(driver, nullptr, 0);
  CHECK(a.wait_for_log("abandoned: no heartbeat from the driver", 6s));
  CHECK(b.wait_for_log("abandoned: no heartbeat from the driver", 6s));
  CHECK(a.wait_for_log("waiting for the next", 15s));
  CHECK(a.log().find("local part cancelled") != std::string::npos);  // not "local part done ()"
  CHECK(a.log().find("local part done ()") == std::string::npos);
  auto r = run_process({loom_binary(), "run", d.write("g.yaml", two_host_graph).string(), "--cluster", cluster.string()},
                       process_options{60000ms, {}, {}, d.dir.string()});
  INFO(r.err);
  CHECK(r.status == 0);
}

TEST_CASE("a worker that starts late is retried; one that never starts is named" * doctest::timeout(60)) {
  cluster_dir d("late");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("graph.yaml", two_host_graph);
  std::unique_ptr<worker> b;
  std::thread late([&] {
    std::this_thread::sleep_for(1500ms);
    b = std::make_unique<worker>("b", pb, d.dir);
  });
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  late.join();
  INFO(r.err);
  CHECK(r.status == 0);

  int nobody = free_port();
  auto missing = d.cluster({{"a", pa}, {"b", nobody}});
  auto m = run_process({loom_binary(), "run", graph.string(), "--cluster", missing.string(), "--connect-timeout", "1"});
  INFO(m.err);
  CHECK(m.status == 1);
  CHECK(m.err.find("worker `b` at tcp://127.0.0.1:" + std::to_string(nobody)) != std::string::npos);
  CHECK(m.err.find("not reachable") != std::string::npos);
}

TEST_CASE("a slow consumer on another host keeps every queue within its edge capacity" * doctest::timeout(60)) {
  cluster_dir d("slow");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("blobs.yaml", R"(graph: blobs
nodes:
  blobs: {kind: source.blob, params: {count: 3000, size: 4096}, placement: {host: a}}
  limit: {kind: flow.throttle, params: {rate: 3000}, placement: {host: b}}
  tally: {kind: sink.count, params: {expect: 3000}, placement: {host: b}}
edges:
  - {from: blobs, to: limit, capacity: 16}
  - {from: limit, to: tally, capacity: 16}
)");
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::istringstream table(r.err.substr(r.err.find("node ")));
  std::string line;
  std::getline(table, line);
  while (std::getline(table, line)) {
    std::istringstream cols(line);
    std::string node, kind, in, out, busy;
    std::uint64_t hwm = 0;
    cols >> node >> kind >> in >> out >> busy >> hwm;
    CHECK(hwm <= 16);
  }
}

// The caller on host a gives up on calls to a slow tool on host b (timeout): each cancel crosses the wire,
// so the tool never starts a call its caller gave up on. The tool runs the first call (3 s); the asker makes
// its calls one after the other, each times out after 200 ms while queued behind the first, and their
// cancels reach b long before the tool is free (the last at about 0.8 s; 2 s of margin for a loaded machine).
TEST_CASE("a call its caller gave up on is cancelled on the tool's host and never runs there" *
          doctest::timeout(60)) {
  cluster_dir d("cancel");
  int pa = free_port(), pb = free_port();
  auto plugin = std::string(LOOM_BINARY_DIR) + "/lib/libloom_calls_test_plugin.so";
  worker a("a", pa, d.dir, {"--plugin", plugin}), b("b", pb, d.dir, {"--plugin", plugin});
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("calls.yaml", R"(graph: calls
nodes:
  numbers: {kind: source.sequence, params: {count: 4}, placement: {host: a}}
  ask: {kind: test.asker, params: {timeout_ms: 200}, tools: [slow], placement: {host: a}}
  slow: {kind: test.slow_tool, params: {delay_ms: 3000}, placement: {host: b}}
  out: {kind: sink.file, params: {path: out/replies.jsonl}, placement: {host: a}}
edges:
  - numbers -> ask -> out
)");
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--plugin", plugin}, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  REQUIRE(r.status == 0);
  // every call timed out at the caller (the first one too: it took 3 s) ...
  auto text = read_file(d.dir / "out/replies.jsonl");
  CHECK(text.find("did not reply within 200 ms") != std::string::npos);
  CHECK(table_row(r.err, "ask") == "ask test.asker 4 4");
  // ... and the tool ran only the first: the three cancelled calls never started on host b
  CHECK(table_row(r.err, "slow") == "slow test.slow_tool 1 1");
}

TEST_CASE("with CurveZMQ a driver without the right key is refused, and the refusal is logged" *
          doctest::timeout(60)) {
  cluster_dir d("curve");
  REQUIRE(run_process({loom_binary(), "keygen", "--out", (d.dir / "cluster").string()}).status == 0);
  REQUIRE(run_process({loom_binary(), "keygen", "--out", (d.dir / "stranger").string()}).status == 0);
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir, {"--key", (d.dir / "cluster").string()});
  worker b("b", pb, d.dir, {"--key", (d.dir / "cluster").string()});
  auto graph = d.write("graph.yaml", two_host_graph);
  process_options o;
  o.cwd = d.dir.string();

  auto good = d.cluster({{"a", pa}, {"b", pb}}, "security:\n  curve: {server_key_file: cluster.key}\n");
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", good.string()}, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK(r.status == 0);

  auto bad = d.cluster({{"a", pa}, {"b", pb}},
                       "security:\n  curve: {server_key_file: cluster.key, client_key_file: stranger.key}\n");
  auto refused = run_process({loom_binary(), "run", graph.string(), "--cluster", bad.string(), "--connect-timeout",
                              "2"}, o);
  INFO(refused.err, "\n", a.log());
  CHECK(refused.status == 1);
  CHECK(refused.err.find("worker `a`") != std::string::npos);
  CHECK(a.wait_for_log("refused", 3s));
}

namespace {

// A throwaway Unix user for the length of a test: made with useradd, removed with userdel.
struct other_user {
  std::string name = "loomt" + std::to_string(getpid() % 1000000);
  bool made = false;
  other_user() {
    std::system(("userdel " + name + " >/dev/null 2>&1").c_str());  // a leftover of a killed run
    made = std::system(("useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin " + name +
                        " >/dev/null 2>&1").c_str()) == 0;
  }
  ~other_user() {
    if (made) std::system(("userdel " + name + " >/dev/null 2>&1").c_str());
  }
  // Its uid and gid, from the password database.
  std::pair<uid_t, gid_t> ids() const {
    auto r = run_process({"/usr/bin/id", "-u", name});
    auto g = run_process({"/usr/bin/id", "-g", name});
    return {static_cast<uid_t>(std::stoul(r.out)), static_cast<gid_t>(std::stoul(g.out))};
  }
};

}  // namespace

TEST_CASE("a worker given no keys refuses another local user's driver before anything is deployed" *
          doctest::timeout(90)) {
  if (::geteuid() != 0) {
    MESSAGE("SKIPPED: making a second Unix user needs root");
    return;
  }
  other_user stranger;
  // Root that cannot make a user is a broken test host, not a reason to pass.
  REQUIRE_MESSAGE(stranger.made, "useradd " << stranger.name << " failed");
  auto [uid, gid] = stranger.ids();
  cluster_dir d("otheruser");
  fs::permissions(d.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);  // root's workers, no key options: root's per-user pair
  CHECK(a.log().find("keys: the per-user pair of uid 0") != std::string::npos);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("graph.yaml", two_host_graph);
  fs::permissions(cluster, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(graph, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  process_options o;
  o.cwd = d.dir.string();
  o.deadline = 30s;

  // The other user's own config folder: its driver makes its own per-user pair there.
  auto home = d.dir / "stranger-config";
  fs::create_directories(home);
  REQUIRE(::chown(home.c_str(), uid, gid) == 0);
  auto as_stranger = [&](const std::string& config) {
    return std::vector<std::string>{"/usr/sbin/runuser", "-u", stranger.name, "--", "/usr/bin/env",
                                    "XDG_CONFIG_HOME=" + config, loom_binary(), "run", graph.string(), "--cluster",
                                    cluster.string(), "--connect-timeout", "3"};
  };
  auto r = run_process(as_stranger(home.string()), o);
  INFO(r.out, r.err, "\n", a.log(), "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(r.err.find("worker `a` at " + a.address()) != std::string::npos);
  // The driver says why: the worker holds other keys, and with no keys given they are per-user.
  CHECK(r.err.find("closed the connection in the CurveZMQ handshake: it holds another key pair than this side expects") !=
        std::string::npos);
  CHECK(r.err.find("lets in only drivers run by its own user") != std::string::npos);
  CHECK(r.seconds < 3);  // at once, not after the connect timeout
  // The worker refused it in the handshake: nothing was deployed, nothing written.
  CHECK(a.wait_for_log("refused a peer", 5s));
  CHECK(a.log().find("deployed") == std::string::npos);
  CHECK(b.log().find("deployed") == std::string::npos);
  CHECK_FALSE(fs::exists(d.dir / "out/numbers.jsonl"));

  // Nor can it use root's pair: the folder is root's alone (0700).
  auto config = std::getenv("XDG_CONFIG_HOME");
  REQUIRE(config != nullptr);
  auto x = run_process(as_stranger(config), o);
  INFO(x.err);
  CHECK(x.status != 0);
  CHECK(x.err.find("per-user keys") != std::string::npos);
  CHECK(x.err.find("Permission denied") != std::string::npos);
  CHECK(a.log().find("deployed") == std::string::npos);

  // The workers' own user needs no step at all.
  auto ok = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  INFO(ok.err);
  CHECK(ok.status == 0);
  CHECK(table_row(ok.err, "out") == "out sink.file 5000 0");
}

TEST_CASE("garbage sent straight to a worker's socket is reported and the worker serves on" *
          doctest::timeout(60)) {
  cluster_dir d("garbage");
  int pa = free_port(), pb = free_port();
  // Plain TCP (--insecure), so that the garbage reaches the decoder: with keys a plain client is refused first.
  worker a("a", pa, d.dir, {"--insecure"}), b("b", pb, d.dir, {"--insecure"});
  {
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 1000);
    s.connect(a.address());
    for (const std::string& junk : std::vector<std::string>{"", "\x01\x02\x03", std::string(100, (char)0xff), std::string(8, (char)0)})
      s.send(zmq::buffer(junk), zmq::send_flags::none);
    std::string two[2] = {"loom", std::string(64, 'x')};
    s.send(zmq::buffer(two[0]), zmq::send_flags::sndmore);
    s.send(zmq::buffer(two[1]), zmq::send_flags::none);
  }
  CHECK(a.wait_for_log("tcp", 5s));
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", d.write("graph.yaml", two_host_graph).string(), "--cluster",
                        cluster.string(), "--insecure"}, o);
  INFO(r.err, "\n", a.log());
  CHECK(r.status == 0);
  CHECK(a.log().find("Segmentation") == std::string::npos);
  // One log line per problem, in the worker's format (none again as a spdlog warning), the stray client's
  // binary routing id in hex (its NUL byte cut the worker's line short).
  std::map<std::string, int> lines;  // the problem's text -> lines that say it
  std::istringstream log(a.log());
  for (std::string line; std::getline(log, line);) {
    CHECK_FALSE(line.ends_with("worker a: "));
    if (auto at = line.find("undecodable message"); at != std::string::npos) {
      INFO(line);
      CHECK(line.find("] worker a: undecodable message from 0x") != std::string::npos);
      ++lines[line.substr(at)];
    }
  }
  CHECK(!lines.empty());
  for (const auto& [text, n] : lines) {
    INFO(text);
    CHECK(n == 1);
  }
}

TEST_CASE("a graph runs across two network namespaces joined by a veth pair" * doctest::timeout(60)) {
  netns_pair ns;
  if (!ns.ok()) {
    MESSAGE("SKIPPED: cannot make network namespaces here (needs root and iproute2)");
    return;
  }
  cluster_dir d("netns");
  worker a("a", 7101, d.dir, {"--insecure"}, "10.231.7.1", ns.in_a());
  worker b("b", 7102, d.dir, {"--insecure"}, "10.231.7.2", ns.in_b());
  CHECK(a.log().find("INSECURE: plain TCP on tcp://10.231.7.1:7101") != std::string::npos);
  auto cluster = d.cluster({{"a", 7101}, {"b", 7102}}, "", {"10.231.7.1", "10.231.7.2"});
  auto graph = d.write("graph.yaml", two_host_graph);
  std::vector<std::string> cmd = ns.in_a();
  for (auto x : {loom_binary(), std::string("run"), graph.string(), std::string("--cluster"), cluster.string(),
                 std::string("--insecure")})
    cmd.push_back(x);
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process(cmd, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  REQUIRE(r.status == 0);
  CHECK(table_row(r.err, "out") == "out sink.file 5000 0");
  CHECK(b.log().find("deployed as host `b`") != std::string::npos);
}
