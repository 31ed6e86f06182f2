// tests/cluster/cluster_test.cpp: distributed runs with real processes on 127.0.0.1: `loom worker`s and a
// `loom run --cluster` driver. Exact outputs across hosts, a worker killed with SIGKILL, a driver killed,
// a worker that starts late or never, a slow consumer on another host, CurveZMQ refusal, and garbage
// sent straight to a worker's socket.
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
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

const fs::path source_dir{LOOM_SOURCE_DIR};

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The first four columns (node, kind, in, out) of a node's row in the summary table, single-spaced.
std::string table_row(const std::string& err, const std::string& node) {
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream cols(line);
    std::string name, kind, in, out;
    if (cols >> name >> kind >> in >> out && name == node) return name + " " + kind + " " + in + " " + out;
  }
  return "(no row for " + node + ")";
}

// A `loom worker` in the background, its stderr in a file; killed (SIGKILL) when it goes out of scope.
class worker {
 public:
  worker(const std::string& name, int port, const fs::path& dir, std::vector<std::string> extra = {},
         const std::string& ip = "127.0.0.1", std::vector<std::string> prefix = {})
      : log_(dir / (name + ".log")), address_("tcp://" + ip + ":" + std::to_string(port)) {
    std::vector<std::string> args = prefix;
    for (auto a : {loom_binary(), std::string("worker"), std::string("--listen"), address_, std::string("--name"), name})
      args.push_back(a);
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      auto fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      dup2(fd, 1);
      if (chdir(dir.c_str()) != 0) _exit(127);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    wait_for_log("listening on", 10s);
  }
  ~worker() { kill9(); }
  // A worker never exits on its own: if it already has, it crashed or a sanitizer stopped it (ASan, UBSan
  // abort it; their report is in its log), and the test fails saying so even when its run looked fine.
  void kill9() {
    if (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        FAIL_CHECK("worker at " << address_ << " exited on its own with status "
                                << (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) << "; its log:\n"
                                << log());
      } else {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
      pid_ = -1;
    }
  }
  std::string log() const { return read_file(log_); }
  bool wait_for_log(const std::string& text, std::chrono::milliseconds limit) const {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  const std::string& address() const { return address_; }

 private:
  fs::path log_;
  std::string address_;
  pid_t pid_ = -1;
};

struct cluster_dir {
  fs::path dir;
  explicit cluster_dir(const std::string& name) {
    dir = fs::temp_directory_path() / ("loom-cluster-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "out");
  }
  ~cluster_dir() { fs::remove_all(dir); }
  fs::path write(const std::string& file, const std::string& text) const {
    std::ofstream(dir / file) << text;
    return dir / file;
  }
  fs::path cluster(const std::vector<std::pair<std::string, int>>& hosts, const std::string& security = "",
                   const std::vector<std::string>& ips = {}) const {
    std::string text = "name: test\nhosts:\n";
    for (std::size_t i = 0; i < hosts.size(); ++i)
      text += "  - {name: " + hosts[i].first + ", address: tcp://" + (i < ips.size() ? ips[i] : "127.0.0.1") + ":" +
              std::to_string(hosts[i].second) + ", cpus: 4}\n";
    return write("cluster.yaml", text + security);
  }
};

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

}  // namespace

TEST_CASE("a graph runs across two worker processes with exact output" * doctest::timeout(60)) {
  cluster_dir d("exact");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  auto graph = d.write("graph.yaml", two_host_graph);
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process({loom_binary(), "run", graph.string(), "--cluster", cluster.string()}, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  REQUIRE(r.status == 0);
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

TEST_CASE("a worker killed with SIGKILL is found within 3 seconds; the others go back to waiting" *
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
  CHECK(r.seconds < 1 + 3 + 3);  // started, killed after ~1 s, found within 3 s, the rest stopped
  CHECK(a.wait_for_log("waiting for the next", 15s));
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

TEST_CASE("garbage sent straight to a worker's socket is reported and the worker serves on" *
          doctest::timeout(60)) {
  cluster_dir d("garbage");
  int pa = free_port(), pb = free_port();
  worker a("a", pa, d.dir), b("b", pb, d.dir);
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
                        cluster.string()}, o);
  INFO(r.err, "\n", a.log());
  CHECK(r.status == 0);
  CHECK(a.log().find("Segmentation") == std::string::npos);
}

// Two hosts as two network namespaces joined by a veth pair that the test makes and removes; the addresses
// live only inside those namespaces.
class netns_pair {
 public:
  netns_pair() : a_("loom-a-" + std::to_string(getpid())), b_("loom-b-" + std::to_string(getpid())) {
    ok_ = sh("ip netns add " + a_) && sh("ip netns add " + b_) &&
          sh("ip link add va" + tag() + " netns " + a_ + " type veth peer name vb" + tag() + " netns " + b_) &&
          sh("ip -n " + a_ + " addr add 10.231.7.1/24 dev va" + tag()) &&
          sh("ip -n " + b_ + " addr add 10.231.7.2/24 dev vb" + tag()) && sh("ip -n " + a_ + " link set va" + tag() + " up") &&
          sh("ip -n " + b_ + " link set vb" + tag() + " up") && sh("ip -n " + a_ + " link set lo up") &&
          sh("ip -n " + b_ + " link set lo up");
  }
  ~netns_pair() {
    sh("ip netns del " + a_);
    sh("ip netns del " + b_);
  }
  bool ok() const { return ok_; }
  std::vector<std::string> in_a() const { return {"/usr/sbin/ip", "netns", "exec", a_}; }
  std::vector<std::string> in_b() const { return {"/usr/sbin/ip", "netns", "exec", b_}; }

 private:
  std::string tag() const { return std::to_string(getpid() % 100000); }
  static bool sh(const std::string& cmd) { return std::system((cmd + " 2>/dev/null").c_str()) == 0; }
  std::string a_, b_;
  bool ok_ = false;
};

TEST_CASE("a graph runs across two network namespaces joined by a veth pair" * doctest::timeout(60)) {
  netns_pair ns;
  if (!ns.ok()) {
    MESSAGE("SKIPPED: cannot make network namespaces here (needs root and iproute2)");
    return;
  }
  cluster_dir d("netns");
  worker a("a", 7101, d.dir, {}, "10.231.7.1", ns.in_a());
  worker b("b", 7102, d.dir, {}, "10.231.7.2", ns.in_b());
  auto cluster = d.cluster({{"a", 7101}, {"b", 7102}}, "", {"10.231.7.1", "10.231.7.2"});
  auto graph = d.write("graph.yaml", two_host_graph);
  std::vector<std::string> cmd = ns.in_a();
  for (auto x : {loom_binary(), std::string("run"), graph.string(), std::string("--cluster"), cluster.string()})
    cmd.push_back(x);
  process_options o;
  o.cwd = d.dir.string();
  auto r = run_process(cmd, o);
  INFO(r.err, "\n", a.log(), "\n", b.log());
  REQUIRE(r.status == 0);
  CHECK(table_row(r.err, "out") == "out sink.file 5000 0");
  CHECK(b.log().find("deployed as host `b`") != std::string::npos);
}
