// tests/faults/faults_test.cpp: the fault suite. Each case runs real `loom worker` processes and a real
// driver (`loom run --cluster`), does one bad thing to them, and checks the exact outcome and that it
// came in time: nothing may hang.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <sstream>
#include <tuple>
#include <functional>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "loom/runtime/transport/endpoint.hpp"
#include "tests/cli/process.hpp"
#include "tests/cluster/harness.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace loom::test::cluster;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

// 200 messages a second for 30 s, through a throttle on worker b.
const char* slow_graph = R"(graph: slow
nodes:
  numbers: {kind: source.sequence, params: {count: 6000}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 200}, placement: {host: b}}
  tally: {kind: sink.count, placement: {host: a}}
edges:
  - numbers -> pace -> tally
)";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a worker stopped with SIGINT mid-run fails the run naming its host and nodes, at once" *
          doctest::timeout(60)) {
  cluster_dir d("sigint");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("slow.yaml", slow_graph);
  int b_status = -2;
  std::thread stopper([&] {
    if (!b.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(3s);
    b.signal(SIGINT);
    b_status = b.wait_exit(15s);
  });
  process_options o;
  o.deadline = 30s;
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  stopper.join();
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(has(r.err, "host `b`"));
  CHECK(has(r.err, "pace"));
  CHECK(r.seconds < 3 + 5 + 3);  // stopped ~3 s in; failed well within the heartbeat timeout after that
  CHECK(b_status == 0);          // the worker reported and exited by itself
  CHECK(has(b.log(), "abandoned: the worker is stopping"));
  CHECK(a.wait_for_log("waiting for the next", 15s));
}

TEST_CASE("a worker hung with SIGSTOP mid-run is lost within the heartbeat timeout" * doctest::timeout(60)) {
  cluster_dir d("sigstop");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("slow.yaml", slow_graph);
  std::thread stopper([&] {
    if (!b.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(1s);
    b.signal(SIGSTOP);
  });
  process_options o;
  o.deadline = 30s;
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  stopper.join();
  b.signal(SIGCONT);
  INFO(r.err, "\n", a.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(has(r.err, "worker `b` at tcp://127.0.0.1:" + std::to_string(pb) + " lost: no heartbeat"));
  CHECK(has(r.err, "nodes lost: pace"));
  CHECK(r.seconds < 1 + 5 + 3);
  CHECK(a.wait_for_log("waiting for the next", 15s));
}

TEST_CASE("heartbeats run from the deploy on: a worker that deploys slowly gets them, a silent one is lost" *
          doctest::timeout(60)) {
  // A stand-in worker that takes the deploy and then never says it is ready, nor answers heartbeats.
  namespace tr = loom::transport;
  std::mutex m;
  int beats = 0;
  bool deployed = false;
  tr::endpoint fake({"fake-b", {}, {}, {}, {}},
                    {[&](tr::incoming&& in) {
                       auto* c = std::get_if<tr::control_msg>(&in.msg);
                       if (!c) return;
                       std::lock_guard lock(m);
                       if (std::holds_alternative<tr::control::deploy>(c->body)) deployed = true;
                       if (std::holds_alternative<tr::control::heartbeat>(c->body) && deployed) ++beats;
                     },
                     {}});
  auto address = fake.bind("tcp://127.0.0.1:0");
  cluster_dir d("deployhang");
  auto cluster = d.write("cluster.yaml", "name: test\nhosts:\n  - {name: b, address: " + address + ", cpus: 4}\n");
  auto graph = d.write("g.yaml", "graph: g\nnodes:\n  s: {kind: source.sequence}\n  c: {kind: sink.count}\n"
                                 "edges:\n  - s -> c\n");
  process_options o;
  o.deadline = 40s;
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--connect-timeout", "5",
                        "--insecure"},  // the stand-in has no keys
                       o);
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(has(r.err, "worker `b` at " + address + " lost: no heartbeat"));
  CHECK(r.seconds < 5 + 3);  // not the deadline for readiness (connect timeout + 10 s)
  std::lock_guard lock(m);
  CHECK(deployed);
  CHECK(beats >= 3);  // one every 500 ms while it deployed
}

namespace {

// numbers on a -> forward on b -> file on b.
const char* two_host_graph = R"(graph: two-hosts
nodes:
  numbers: {kind: source.sequence, params: {count: 2000}, placement: {host: a}}
  pass: {kind: flow.forward, placement: {host: b}}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}, placement: {host: b}}
edges:
  - numbers -> pass -> out
)";

}  // namespace

TEST_CASE("a worker given no keys uses the per-user pair on any address; --insecure says so first" *
          doctest::timeout(60)) {
  cluster_dir d("insecure");
  int port = free_port();
  {
    worker w("w", port, d.dir, {}, "0.0.0.0");  // no key options: the per-user pair, so a network address is fine
    CHECK(has(w.log(), "keys: the per-user pair of uid " + std::to_string(::geteuid())));
    CHECK(has(w.log(), "(CurveZMQ)"));
    CHECK_FALSE(has(w.log(), "INSECURE"));
  }
  worker w("w2", port, d.dir, {"--insecure"}, "0.0.0.0");  // its own log: "w.log" has "listening on" already
  auto first_line = w.log().substr(0, w.log().find('\n'));
  CHECK(has(first_line, "INSECURE: plain TCP on tcp://0.0.0.0:" + std::to_string(port)));
  CHECK(has(first_line, "anyone who reaches this port can run graphs here"));

  worker local("l", free_port(), d.dir, {"--insecure"});  // on loopback too: every local user may deploy
  auto local_first = local.log().substr(0, local.log().find('\n'));
  CHECK(has(local_first, "INSECURE: plain TCP on tcp://127.0.0.1:"));
  CHECK(has(local_first, "every user of this host can run graphs here"));
}

TEST_CASE("each host has its own key pair: runs work, a host cannot pose as another, a driver key is revocable" *
          doctest::timeout(90)) {
  cluster_dir d("hostkeys");
  for (auto name : {"driver", "a", "b", "stranger"})
    REQUIRE(run_process({loom_binary(), "keygen", "--out", (d.dir / name).string()}).status == 0);
  int pa = free_port(), pb = free_port();
  auto hosts = [&](const std::string& b_key) {
    return "name: test\nhosts:\n  - {name: a, address: tcp://127.0.0.1:" + std::to_string(pa) +
           ", cpus: 4, public_key: a.pub}\n  - {name: b, address: tcp://127.0.0.1:" + std::to_string(pb) +
           ", cpus: 4, public_key: " + b_key + "}\n";
  };
  auto cluster = d.write("cluster.yaml", hosts("b.pub") + "security:\n  curve: {client_key_file: driver.key}\n");
  auto graph = d.write("graph.yaml", two_host_graph);
  process_options o;
  o.cwd = d.dir.string();
  {
    worker a("a", pa, d.dir, {"--key", (d.dir / "a").string(), "--allow", (d.dir / "driver.pub").string()});
    worker b("b", pb, d.dir, {"--key", (d.dir / "b").string(), "--allow", (d.dir / "driver.pub").string()});
    auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
    INFO(r.err, "\n", a.log(), "\n", b.log());
    REQUIRE(r.status == 0);
    CHECK(table_row(r.err, "out") == "out sink.file 2000 0");

    // b's key was let in at a for that run only: once it is over, a new connection with it is refused
    REQUIRE(a.wait_for_log("waiting for the next", 10s));
    {
      loom::transport::endpoint_config cfg;
      cfg.name = "b";
      cfg.curve = loom::transport::load_keypair((d.dir / "b").string());
      loom::transport::endpoint as_b(cfg, {[](loom::transport::incoming&&) {}, [](const loom::transport::problem&) {}});
      loom::transport::connect_options co;
      co.server_key = loom::transport::load_public_key((d.dir / "a.pub").string());
      co.timeout = 3s;
      CHECK_THROWS_WITH_AS(as_b.connect(a.address(), co), doctest::Contains("refused this endpoint's curve key"),
                           loom::transport::transport_error);
    }

    // the driver's key revoked on a (a stranger's key is the only one allowed there): refused, a named
    auto revoked = d.write("revoked.yaml", hosts("b.pub") + "security:\n  curve: {client_key_file: stranger.key}\n");
    auto x = run_process({loom_binary(), "run", graph.string(), "--cluster", revoked.string(), "--connect-timeout", "2"}, o);
    INFO(x.err);
    CHECK(x.status == 1);
    CHECK(has(x.err, "worker `a`"));
    CHECK(has(x.err, "refused this endpoint's curve key"));
  }
  // host b's worker runs with host a's key pair: the driver expects b's key, so the handshake fails
  worker a("a", pa, d.dir, {"--key", (d.dir / "a").string(), "--allow", (d.dir / "driver.pub").string()});
  worker fake_b("b", pb, d.dir, {"--key", (d.dir / "a").string(), "--allow", (d.dir / "driver.pub").string()});
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--connect-timeout", "2"}, o);
  INFO(r.err, "\n", fake_b.log());
  CHECK(r.status == 1);
  CHECK(has(r.err, "worker `b` at tcp://127.0.0.1:" + std::to_string(pb)));
  // the driver says why, as the worker's log does (not "no detail")
  CHECK(has(r.err, "closed the connection in the CurveZMQ handshake: it holds another key pair than this side "
                   "expects of it"));
  CHECK_FALSE(has(r.err, "no detail"));
}

TEST_CASE("with a key pair per host, a worker restarted between runs serves the next run" * doctest::timeout(90)) {
  cluster_dir d("restart");
  for (auto name : {"driver", "a", "b"})
    REQUIRE(run_process({loom_binary(), "keygen", "--out", (d.dir / name).string()}).status == 0);
  int pa = free_port(), pb = free_port();
  auto cluster = d.write("cluster.yaml", "name: test\nhosts:\n  - {name: a, address: tcp://127.0.0.1:" +
                                             std::to_string(pa) + ", cpus: 4, public_key: a.pub}\n  - {name: b, "
                                             "address: tcp://127.0.0.1:" + std::to_string(pb) +
                                             ", cpus: 4, public_key: b.pub}\nsecurity:\n  curve: {client_key_file: "
                                             "driver.key}\n");
  auto graph = d.write("graph.yaml", two_host_graph);
  process_options o;
  o.cwd = d.dir.string();
  o.deadline = 30s;
  std::vector<std::string> keys_a{"--key", (d.dir / "a").string(), "--allow", (d.dir / "driver.pub").string()};
  std::vector<std::string> keys_b{"--key", (d.dir / "b").string(), "--allow", (d.dir / "driver.pub").string()};
  worker a("a", pa, d.dir, keys_a);
  {
    worker b("b", pb, d.dir, keys_b);
    auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
    INFO(r.err);
    REQUIRE(r.status == 0);
  }
  // b comes back on its address: a's data connection to it reconnects, and the new b, which lets a's key in
  // only from its next deploy on, refuses it; the next run must open a new one, not send into the closed one.
  worker b("b2", pb, d.dir, keys_b);
  CHECK(a.wait_for_log("refused this endpoint's curve key", 10s));
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 0);
  CHECK(table_row(r.err, "out") == "out sink.file 2000 0");
}

TEST_CASE("a worker that lacks a kind the graph uses (no plugin there) refuses the run naming the kind; "
          "a plugin only one host has is fine while the graph does not use it" * doctest::timeout(90)) {
  cluster_dir d("plugins");
  int pa = free_port(), pb = free_port();
  auto plugin = std::string(LOOM_BINARY_DIR) + "/lib/libloom_example_plugin.so";
  worker a("a", pa, d.dir, {"--plugin", plugin}), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  process_options o;
  o.cwd = d.dir.string();
  o.deadline = 30s;
  // The graph does not use text.upper: the driver's and a's extra kind does not matter.
  auto plain = d.write("plain.yaml", two_host_graph);
  auto ok = run_process({loom_binary(), "run", plain.string(), "--cluster", cluster.string(), "--plugin", plugin}, o);
  INFO(ok.err, "\n", b.log());
  CHECK(ok.status == 0);
  // It does, on b, which lacks the plugin.
  auto graph = d.write("graph.yaml", R"(graph: upper-on-b
nodes:
  numbers: {kind: source.sequence, params: {count: 20}, placement: {host: a}}
  shout: {kind: text.upper, placement: {host: b}}
  out: {kind: sink.count, placement: {host: a}}
edges:
  - numbers -> shout -> out
)");
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--plugin", plugin}, o);
  INFO(r.err, "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(has(r.err, "worker `b` refused the run"));
  CHECK(has(r.err, "text.upper"));
  CHECK(b.wait_for_log("waiting for the next", 15s));
}

TEST_CASE("oversized and garbage frames at a worker's port are dropped; the worker serves the next run" *
          doctest::timeout(60)) {
  cluster_dir d("oversized");
  int pa = free_port(), pb = free_port();
  // Plain TCP (--insecure), so that the frames reach the decoder: with keys a plain client is refused first.
  worker a("a", pa, d.dir, {"--max-message-size", "1MiB", "--insecure"}), b("b", pb, d.dir, {"--insecure"});
  {
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 2000);
    s.connect(a.address());
    std::string big(2 << 20, 'x');  // over the worker's 1 MiB limit: the connection is dropped unread
    s.send(zmq::buffer(big), zmq::send_flags::none);
    std::string junk(64, '\x07');
    s.send(zmq::buffer(junk), zmq::send_flags::none);
    std::this_thread::sleep_for(500ms);
  }
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", d.write("graph.yaml", two_host_graph).string(), "--cluster",
                        cluster.string(), "--insecure"}, o);
  INFO(r.err, "\n", a.log());
  CHECK(r.status == 0);
  CHECK(table_row(r.err, "out") == "out sink.file 2000 0");
}

TEST_CASE("a link down for 20 s fails the run within the heartbeat timeout, naming both ends of the link" *
          doctest::timeout(90)) {
  netns_pair ns;
  if (!ns.ok()) {
    MESSAGE("SKIPPED: cannot make network namespaces here (needs root and iproute2)");
    return;
  }
  cluster_dir d("linkdown");
  worker a("a", 7101, d.dir, {}, "10.231.7.1", ns.in_a());
  worker b("b", 7102, d.dir, {}, "10.231.7.2", ns.in_b());
  auto cluster = d.cluster({{"a", 7101}, {"b", 7102}}, "", {"10.231.7.1", "10.231.7.2"});
  auto graph = d.write("slow.yaml", slow_graph);
  std::vector<std::string> cmd = ns.in_a();  // the driver lives with worker a
  for (auto x : {loom_binary(), std::string("run"), graph.string(), std::string("--cluster"), cluster.string()})
    cmd.push_back(x);
  std::thread cut([&] {
    if (!b.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(2s);
    ns.set_link(false);
    std::this_thread::sleep_for(20s);
    ns.set_link(true);
  });
  process_options o;
  o.cwd = d.dir.string();
  o.deadline = 40s;
  auto r = run_process(cmd, o);
  cut.join();
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(has(r.err, "worker `b` at tcp://10.231.7.2:7102 lost: no heartbeat"));
  CHECK(has(r.err, "nodes lost: pace"));
  // both ends of the data link that went with it, and what crossed it
  CHECK(has(r.err, "data links lost: `a` <-> `b` (numbers.out -> pace.in, pace.out -> tally.in)"));
  CHECK(r.seconds < 2 + 5 + 5);  // found within the heartbeat timeout, not when the link came back
  CHECK(b.wait_for_log("abandoned: no heartbeat from the driver", 10s));
}

// The data link between two workers goes down for good while the driver still hears both: the worker that
// opened it finds it silent (ZMTP heartbeats close it after 5 s; not back 8 s later) and the run fails
// naming both ends and what crossed the link, not a lost worker.
TEST_CASE("a data link between two workers down past its timeout fails the run naming both ends" *
          doctest::timeout(90)) {
  netns_trio ns;
  if (!ns.ok()) {
    MESSAGE("SKIPPED: cannot make network namespaces here (needs root and iproute2)");
    return;
  }
  cluster_dir d("datalink");
  worker a("a", 7101, d.dir, {}, "10.231.10.1", ns.in_a());
  worker b("b", 7102, d.dir, {}, "10.231.10.2", ns.in_b());
  auto cluster = d.cluster({{"a", 7101}, {"b", 7102}}, "", {"10.231.10.1", "10.231.10.2"});
  auto graph = d.write("slow.yaml", slow_graph);
  std::vector<std::string> cmd = ns.in_d();  // the driver on its own host, reaching both over other links
  for (auto x : {loom_binary(), std::string("run"), graph.string(), std::string("--cluster"), cluster.string()})
    cmd.push_back(x);
  std::thread cut([&] {
    if (!b.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(2s);
    ns.set_data_link(false);
  });
  process_options o;
  o.cwd = d.dir.string();
  o.deadline = 40s;
  auto r = run_process(cmd, o);
  cut.join();
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 1);
  CHECK(has(r.err, "data link `"));
  CHECK((has(r.err, "host `a`: data link `a` <-> `b` (tcp://10.231.10.2:7102): numbers.out -> pace.in, pace.out -> tally.in") ||
         has(r.err, "host `b`: data link `b` <-> `a` (tcp://10.231.10.1:7101): numbers.out -> pace.in, pace.out -> tally.in")));
  CHECK_FALSE(has(r.err, "lost: no heartbeat"));  // the driver heard both workers throughout
  CHECK(r.seconds < 2 + 5 + 8 + 5);  // heartbeat timeout, the worker's link grace, slack for a loaded machine
}

TEST_CASE("a link down for 2 s mid-run: the run completes exactly" * doctest::timeout(90)) {
  netns_pair ns;
  if (!ns.ok()) {
    MESSAGE("SKIPPED: cannot make network namespaces here (needs root and iproute2)");
    return;
  }
  cluster_dir d("linkblip");
  worker a("a", 7101, d.dir, {}, "10.231.7.1", ns.in_a());
  worker b("b", 7102, d.dir, {}, "10.231.7.2", ns.in_b());
  auto cluster = d.cluster({{"a", 7101}, {"b", 7102}}, "", {"10.231.7.1", "10.231.7.2"});
  auto graph = d.write("paced.yaml", R"(graph: paced
nodes:
  numbers: {kind: source.sequence, params: {count: 1600}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 200}, placement: {host: b}}
  tally: {kind: sink.count, params: {expect: 1600}, placement: {host: a}}
edges:
  - numbers -> pace -> tally
)");
  std::vector<std::string> cmd = ns.in_a();
  for (auto x : {loom_binary(), std::string("run"), graph.string(), std::string("--cluster"), cluster.string()})
    cmd.push_back(x);
  std::thread cut([&] {
    if (!b.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(2s);
    ns.set_link(false);
    std::this_thread::sleep_for(2s);
    ns.set_link(true);
  });
  process_options o;
  o.cwd = d.dir.string();
  o.deadline = 40s;
  auto r = run_process(cmd, o);
  cut.join();
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 0);
  CHECK(table_row(r.err, "pace") == "pace flow.throttle 1600 1600");
  CHECK(table_row(r.err, "tally") == "tally sink.count 1600 0");
}

namespace {

// numbers on a -> pace on b (stateless, `recover: replace`) -> a file on c; `pace_placement` says where pace
// starts (and, with labels, where it may go).
std::string movable_graph(const std::string& pace_placement, const std::string& out_host = "c") {
  return R"(graph: movable
nodes:
  numbers: {kind: source.sequence, params: {count: 1500}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 250}, placement: )" +
         pace_placement + R"(, recover: replace}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}, placement: {host: )" +
         out_host + R"(}}
edges:
  - numbers -> pace -> out
)";
}

// The run's output is exact: the sink got 1500 values and the file holds every number once, in order
// (nothing lost with a host, nothing produced twice by a replacement).
void check_numbers(const cluster_dir& d, const std::string& err) {
  CHECK(table_row(err, "out") == "out sink.file 1500 0");
  std::istringstream lines(read_file(d.dir / "out" / "numbers.jsonl"));
  std::string line, runs;  // "0-499 ..." : the file as runs of consecutive numbers, for the message
  std::int64_t count = 0, prev = -2, start = -1;
  bool in_order = true;
  while (std::getline(lines, line)) {
    auto v = std::stoll(line);
    if (v != count) in_order = false;
    if (v != prev + 1) {
      if (start >= 0) runs += fmt::format("{}-{} ", start, prev);
      start = v;
    }
    prev = v;
    ++count;
  }
  if (start >= 0) runs += fmt::format("{}-{}", start, prev);
  INFO("the file: ", runs);
  CHECK(count == 1500);
  CHECK(in_order);
}

// A cluster file of hosts on 127.0.0.1 with 4 cpus each; `relay` ones carry the label role: relay.
fs::path relay_cluster(const cluster_dir& d, const std::vector<std::tuple<std::string, int, bool>>& hosts) {
  std::string text = "name: test\nhosts:\n";
  for (const auto& [name, port, relay] : hosts)
    text += "  - {name: " + name + ", address: tcp://127.0.0.1:" + std::to_string(port) + ", cpus: 4" +
            (relay ? ", labels: {role: relay}" : "") + "}\n";
  return d.write("cluster.yaml", text);
}

// Three workers a, b, c on loopback and their cluster file.
struct three_workers {
  explicit three_workers(const std::string& name) : d(name) {}
  cluster_dir d;
  int pa = free_port(), pb = free_port(), pc = free_port();
  worker a{"a", pa, d.dir}, b{"b", pb, d.dir}, c{"c", pc, d.dir};
  fs::path cluster = d.cluster({{"a", pa}, {"b", pb}, {"c", pc}});
};

// `loom run GRAPH --cluster CLUSTER` (deadline `limit`) while `fault` runs beside it (kills, stops).
loom::test::process_result run_with_fault(const fs::path& graph, const fs::path& cluster, std::function<void()> fault,
                                          std::chrono::seconds limit = 60s) {
  std::thread t(std::move(fault));
  process_options o;
  o.deadline = limit;
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  t.join();
  return r;
}

// `loom run GRAPH --cluster CLUSTER` with worker `victim` killed (SIGKILL) 2 s after it deployed.
loom::test::process_result run_killing(const fs::path& graph, const fs::path& cluster, worker& victim) {
  return run_with_fault(graph, cluster, [&] {
    if (!victim.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(2s);
    victim.kill9();
  });
}

// Runs the graph with worker b killed (SIGKILL) 2 s into the run, ~500 values through pace and some in
// flight on every link; checks that pace moved to `expect_host` and that the file is exactly 0..1499.
void kill_b_and_check(cluster_dir& d, const fs::path& cluster, const fs::path& graph, worker& b,
                      const std::string& expect_host, const std::string& logs) {
  auto r = run_killing(graph, cluster, b);
  INFO(r.err, "\n", logs);
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == 0);
  CHECK(has(r.err, "moved: pace (host `b` -> `" + expect_host + "`; "));
  CHECK(has(r.err, " values handled on `b` before)"));
  CHECK(table_row(r.err, "numbers") == "numbers source.sequence 0 1500");
  check_numbers(d, r.err);
}

}  // namespace

TEST_CASE("a movable node's batches are cut to the cluster's message size both ways; every value arrives" *
          doctest::timeout(90)) {
  // A movable consumer's stand-in and a movable producer's egress sent each batch whole: a pull of 600
  // lines of 16 KiB (9.6 MiB in one batch, under a window of 16384 values) passed a 2 MiB max_message_size
  // and failed the run ("exceeds max_message_size"). They are cut like every other batch now.
  cluster_dir d("movable-cut");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir, {"--max-message-size", "2MiB"}), b("b", pb, d.dir, {"--max-message-size", "2MiB"});
  auto cluster = d.cluster({{"a", pa}, {"b", pb}}, "max_message_size: 2MiB\n");
  std::string lines;
  for (int i = 0; i < 600; ++i) lines += std::to_string(i) + std::string(16384, 'x') + "\n";
  auto input = d.write("big.txt", lines);
  auto graph = d.write("cut.yaml", "graph: cut\nnodes:\n  src: {kind: source.file, params: {path: " + input.string() +
                                       "}, placement: {host: a}}\n  pass: {kind: flow.forward, placement: {host: b}, "
                                       "recover: replace}\n  out: {kind: sink.count, params: {expect: 600}, "
                                       "placement: {host: a}}\nedges:\n  - src -> pass -> out\n");
  process_options o;
  o.deadline = 60s;
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  CHECK(r.status == 0);
  CHECK_FALSE(has(r.err, "exceeds max_message_size"));
}

TEST_CASE("a worker killed with SIGKILL mid-run: its stateless node moves next to a neighbour, output exact" *
          doctest::timeout(90)) {
  three_workers w("move");
  // Pinned to b: the pin says where it starts; on b's loss it goes near its upstream (host a), where its
  // producer now hands it values in-process and its consumer's host c rewires to a.
  auto graph = w.d.write("movable.yaml", movable_graph("{host: b}"));
  kill_b_and_check(w.d, w.cluster, graph, w.b, "a", w.a.log() + "\n" + w.c.log());
}

TEST_CASE("a worker killed with SIGKILL mid-run: its stateless node moves to a spare host, output exact" *
          doctest::timeout(90)) {
  cluster_dir d("spare");
  int pa = free_port(), pb = free_port(), pc = free_port(), pd = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir), c("c", pc, d.dir), spare("d", pd, d.dir);
  // Only b and d are relays: pace starts on b and can only go to d, so both its producer's host (a) and
  // its consumer's host (c) send to it over the network again (a resends what it had not credited).
  auto cluster = relay_cluster(d, {{"a", pa, false}, {"b", pb, true}, {"c", pc, false}, {"d", pd, true}});
  auto graph = d.write("movable.yaml", movable_graph("{labels: {role: relay}}"));
  kill_b_and_check(d, cluster, graph, b, "d", a.log() + "\n" + c.log() + "\n" + spare.log());
}

TEST_CASE("a worker killed with SIGKILL mid-run: a node whose producer and consumer share a host moves; exact" *
          doctest::timeout(90)) {
  // numbers and out on a, pace on b (then d): pace's credits go to the host its outputs go to, so they
  // travel right behind them, naming them, and a delivers each credit only after its outputs (no wait for
  // acknowledgements). Killed mid-run, pace moves to d and a sends again what was not credited.
  cluster_dir d("same-host");
  int pa = free_port(), pb = free_port(), pd = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir), spare("d", pd, d.dir);
  auto cluster = relay_cluster(d, {{"a", pa, false}, {"b", pb, true}, {"d", pd, true}});
  auto graph = d.write("movable.yaml", movable_graph("{labels: {role: relay}}", "a"));
  kill_b_and_check(d, cluster, graph, b, "d", a.log() + "\n" + spare.log());
}

TEST_CASE("a spare host of a run with movable nodes ends with the run, ok or failed" * doctest::timeout(60)) {
  cluster_dir d("spare-end");
  int pa = free_port(), pb = free_port(), pc = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir), spare("c", pc, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}, {"c", pc}});
  auto graph = [&](int expect) {
    return d.write("g.yaml", "graph: g\nnodes:\n  numbers: {kind: source.sequence, params: {count: 200}, placement: "
                             "{host: a}}\n  pass: {kind: flow.forward, placement: {host: b}, recover: replace}\n"
                             "  tally: {kind: sink.count, params: {expect: " +
                                 std::to_string(expect) + "}, placement: {host: a}}\nedges:\n  - numbers -> pass -> tally\n");
  };
  process_options o;
  o.deadline = 30s;
  auto ok = run_process({loom_binary(), "run", graph(200).string(), "--cluster", cluster.string()}, o);
  INFO(ok.err, "\n", spare.log());
  CHECK(ok.status == 0);
  CHECK(has(ok.err, "connecting to spare worker `c`"));
  CHECK(spare.wait_for_log("over; waiting for the next", 3s));
  auto failed = run_process({loom_binary(), "run", graph(7).string(), "--cluster", cluster.string()}, o);
  INFO(failed.err);
  CHECK(failed.status == 1);
  CHECK(has(failed.err, "tally"));
  // Told to cancel (not left to notice the driver's silence 5 s later).
  auto t0 = std::chrono::steady_clock::now();
  std::string log;
  while (std::chrono::steady_clock::now() - t0 < 3s) {
    log = spare.log();
    std::size_t n = 0;
    for (auto p = log.find("over; waiting for the next"); p != std::string::npos; p = log.find("over; waiting", p + 1)) ++n;
    if (n >= 2) break;
    std::this_thread::sleep_for(50ms);
  }
  INFO(log);
  CHECK_FALSE(has(log, "abandoned"));
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("an agent that calls a tool moves off a killed worker; every task is answered once, in order" *
          doctest::timeout(90)) {
  three_workers w("agent-move");
  auto&& [d, a, b, c, cluster] = std::tie(w.d, w.a, w.b, w.c, w.cluster);
  auto graph = d.write("agent.yaml", R"(graph: agent-move
nodes:
  numbers: {kind: source.sequence, params: {count: 600}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 150}, placement: {host: a}}
  asker:
    kind: agent.llm
    tools: [calc]
    placement: {host: b}
    recover: replace
    params:
      rules:
        - {when: first, call: {tool: calc, arguments: {expression: "{{input}} * 2"}}}
        - {when: after_tool, reply: "{{tool.calc.result}}"}
  calc: {kind: tool.calculator, placement: {host: c}}
  out: {kind: sink.file, params: {path: out/answers.jsonl}, placement: {host: c}}
edges:
  - numbers -> pace -> asker -> out
)");
  auto r = run_killing(graph, cluster, b);
  INFO(r.err, "\n", a.log(), "\n", c.log());
  CHECK(r.status == 0);
  CHECK(has(r.err, "moved: asker (host `b` -> `"));
  CHECK(table_row(r.err, "out") == "out sink.file 600 0");
  std::istringstream lines(read_file(d.dir / "out" / "answers.jsonl"));
  std::string line;
  std::int64_t n = 0;
  bool exact = true;
  while (std::getline(lines, line)) {
    // {"agent":"asker","role":"asker","task":"N","text":"2N","tool_calls":1}
    if (!has(line, fmt::format("\"task\":\"{}\",\"text\":\"{}\",\"tool_calls\":1}}", n, 2 * n))) {
      if (exact) MESSAGE("line ", n, ": ", line);
      exact = false;
    }
    ++n;
  }
  CHECK(n == 600);
  CHECK(exact);
}

TEST_CASE("a worker hung with SIGSTOP: its node moves; when it wakes, what it still sends is dropped" *
          doctest::timeout(90)) {
  three_workers w("move-stop");
  auto&& [d, a, b, c, cluster] = std::tie(w.d, w.a, w.b, w.c, w.cluster);
  auto graph = d.write("movable.yaml", movable_graph("{host: b}"));
  auto r = run_with_fault(graph, cluster, [&] {
    if (!b.wait_for_log("deployed", 10s)) return;
    std::this_thread::sleep_for(2s);
    b.signal(SIGSTOP);
    if (!c.wait_for_log("moved to host", 15s)) return;
    std::this_thread::sleep_for(500ms);
    b.signal(SIGCONT);  // the old pace goes on where it stopped, with its old streams
  });
  INFO(r.err, "\n", a.log(), "\n", c.log(), "\n", b.log());
  CHECK(r.status == 0);
  CHECK(has(r.err, "moved: pace (host `b` -> `a`; "));
  check_numbers(d, r.err);
  CHECK(b.wait_for_log("abandoned", 15s));
}

TEST_CASE("a node moved off a killed worker moves again when its new host is killed too; output exact" *
          doctest::timeout(120)) {
  cluster_dir d("move-twice");
  int pa = free_port(), pb = free_port(), pc = free_port(), pd = free_port(), pe = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir), c("c", pc, d.dir), spare1("d", pd, d.dir), spare2("e", pe, d.dir);
  auto cluster = relay_cluster(
      d, {{"a", pa, false}, {"b", pb, true}, {"c", pc, false}, {"d", pd, true}, {"e", pe, true}});
  auto graph = d.write("movable.yaml", movable_graph("{labels: {role: relay}}"));
  auto r = run_with_fault(
      graph, cluster,
      [&] {
        if (!b.wait_for_log("deployed", 10s)) return;
        std::this_thread::sleep_for(2s);
        b.kill9();
        if (!spare1.wait_for_log("moved to host `d` (here)", 15s)) return;
        std::this_thread::sleep_for(1500ms);
        spare1.kill9();
      },
      90s);
  INFO(r.err, "\n", a.log(), "\n", c.log(), "\n", spare2.log());
  CHECK(r.status == 0);
  CHECK(has(r.err, "moved: pace (host `b` -> `d`; "));
  CHECK(has(r.err, "moved: pace (host `d` -> `e`; "));
  check_numbers(d, r.err);
}

TEST_CASE("a spread replica on a killed worker shares a host with its group when no other host is free; "
          "every value once" * doctest::timeout(90)) {
  cluster_dir d("spread");
  int pa = free_port(), pb = free_port(), pc = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir), c("c", pc, d.dir);
  // b and c are the only relays: pace[0] and pace[1] start one on each; when b dies, c is the only place.
  auto cluster = relay_cluster(d, {{"a", pa, false}, {"b", pb, true}, {"c", pc, true}});
  auto graph = d.write("spread.yaml", R"(graph: spread
nodes:
  numbers: {kind: source.sequence, params: {count: 1500}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 250}, replicas: 2, spread: workers,
         placement: {labels: {role: relay}}, recover: replace}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}, placement: {host: a}}
edges:
  - numbers -> pace -> out
)");
  auto r = run_killing(graph, cluster, b);
  INFO(r.err, "\n", a.log(), "\n", c.log());
  CHECK_FALSE(r.timed_out);
  REQUIRE(r.status == 0);
  CHECK(has(r.err, "-> `c`; "));
  CHECK(has(r.err, "spread group `workers` now shares host `c`"));
  // Two replicas interleave: every number once, in any order.
  std::istringstream lines(read_file(d.dir / "out" / "numbers.jsonl"));
  std::vector<std::int64_t> got;
  for (std::string line; std::getline(lines, line);) got.push_back(std::stoll(line));
  std::sort(got.begin(), got.end());
  REQUIRE(got.size() == 1500);
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == static_cast<std::int64_t>(i));
}

TEST_CASE("a strict spread group holds in recovery: the run fails naming the group rather than share a host" *
          doctest::timeout(90)) {
  cluster_dir d("spread-strict");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("strict.yaml", R"(graph: strict
nodes:
  numbers: {kind: source.sequence, params: {count: 1500}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 250}, replicas: 2, spread: {group: workers, strict: true},
         recover: replace}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}, placement: {host: a}}
edges:
  - numbers -> pace -> out
)");
  auto r = run_killing(graph, cluster, b);
  INFO(r.err, "\n", a.log());
  CHECK_FALSE(r.timed_out);
  CHECK(r.status != 0);
  CHECK(has(r.err, "worker `b` at "));
  CHECK(has(r.err, "no surviving host fits: "));
  CHECK(has(r.err, "`a` holds another instance of spread group `workers`"));
  CHECK_FALSE(has(r.err, "now shares host"));
}

TEST_CASE("two workers, replicas: 2, spread: workers, one killed: the replica shares the survivor and the output "
          "is exact" * doctest::timeout(90)) {
  cluster_dir d("spread-two");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("two.yaml", R"(graph: two
nodes:
  numbers: {kind: source.sequence, params: {count: 1500}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 250}, replicas: 2, spread: workers, recover: replace}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}, placement: {host: a}}
edges:
  - numbers -> pace -> out
)");
  auto r = run_killing(graph, cluster, b);
  INFO(r.err, "\n", a.log());
  CHECK_FALSE(r.timed_out);
  REQUIRE(r.status == 0);
  CHECK(has(r.err, "(host `b` -> `a`; "));
  CHECK(has(r.err, "spread group `workers` now shares host `a`"));
  CHECK(table_row(r.err, "out") == "out sink.file 1500 0");
  std::istringstream lines(read_file(d.dir / "out" / "numbers.jsonl"));
  std::vector<std::int64_t> got;
  for (std::string line; std::getline(lines, line);) got.push_back(std::stoll(line));
  std::sort(got.begin(), got.end());
  REQUIRE(got.size() == 1500);
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == static_cast<std::int64_t>(i));
}
