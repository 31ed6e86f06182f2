// tests/cluster/harness.hpp: real `loom worker` processes for the cluster and fault tests: free ports, a
// worker in the background with its log, a scratch folder with a cluster file, and network namespaces.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/cli/process.hpp"
#include "tests/support/ports.hpp"

namespace loom::test::cluster {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;


inline const fs::path source_dir{LOOM_SOURCE_DIR};

// Workers started without key options and drivers whose cluster file has no keys use the per-user pair
// (docs/cluster.md, Security). This test process and its children find it in a config folder of its own,
// made on first use and removed at exit, so no test touches the real user's ~/.config/loom.
struct own_config_home {
  fs::path dir;
  pid_t owner = ::getpid();  // a forked child that exits normally must not remove it
  own_config_home() {
    std::string tmpl = (fs::temp_directory_path() / "loom-config-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return;
    dir = tmpl;
    ::setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
  }
  ~own_config_home() {
    std::error_code ec;
    if (!dir.empty() && ::getpid() == owner) fs::remove_all(dir, ec);
  }
};
inline own_config_home config_home;

using loom::test::free_port;  // tests/support/ports.hpp

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The first four columns (node, kind, in, out) of a node's row in the summary table, single-spaced.
inline std::string table_row(const std::string& err, const std::string& node) {
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
  pid_t pid() const { return pid_; }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Waits up to `limit` for the process to exit by itself; its exit status, or -1 if it is still running.
  int wait_exit(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0 && std::chrono::steady_clock::now() < end) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }
  // A worker does not die on its own: if it already has, other than by a clean exit (a test that stops it
  // with SIGINT), it crashed or a sanitizer stopped it (ASan, UBSan abort it; their report is in its log), and
  // the test fails saying so even when its run looked fine.
  void kill9() {
    if (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
          FAIL_CHECK("a worker exited on its own with status "
                     << (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) << "; its log:\n" << log());
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
  // Takes the veth link between the two namespaces down (both ends) or up again.
  bool set_link(bool up) const {
    auto state = std::string(up ? " up" : " down");
    return sh("ip -n " + a_ + " link set va" + tag() + state) && sh("ip -n " + b_ + " link set vb" + tag() + state);
  }
  std::vector<std::string> in_a() const { return {"/usr/sbin/ip", "netns", "exec", a_}; }
  std::vector<std::string> in_b() const { return {"/usr/sbin/ip", "netns", "exec", b_}; }

 private:
  std::string tag() const { return std::to_string(getpid() % 100000); }
  static bool sh(const std::string& cmd) { return std::system((cmd + " 2>/dev/null").c_str()) == 0; }
  std::string a_, b_;
  bool ok_ = false;
};


// Three namespaces: hosts a and b and a driver's d, each pair joined by its own veth, so the data link
// a <-> b can go down while the driver still reaches both. Each host's address (10.231.10.1 for a,
// 10.231.10.2 for b) lives on its loopback and is routed over the veths; set_data_link cuts only a <-> b.
class netns_trio {
 public:
  netns_trio() {
    auto t = std::to_string(getpid() % 100000);
    a_ = "loom-ta-" + t, b_ = "loom-tb-" + t, d_ = "loom-td-" + t;
    ab_ = "tab" + t, ba_ = "tba" + t;
    ok_ = sh("ip netns add " + a_) && sh("ip netns add " + b_) && sh("ip netns add " + d_) &&
          veth(a_, ab_, "10.231.7.1", b_, ba_, "10.231.7.2") &&
          veth(d_, "tda" + t, "10.231.8.1", a_, "tad" + t, "10.231.8.2") &&
          veth(d_, "tdb" + t, "10.231.9.1", b_, "tbd" + t, "10.231.9.2") &&
          sh("ip -n " + a_ + " addr add 10.231.10.1/32 dev lo") && sh("ip -n " + b_ + " addr add 10.231.10.2/32 dev lo") &&
          sh("ip -n " + a_ + " route add 10.231.10.2/32 via 10.231.7.2") &&
          sh("ip -n " + b_ + " route add 10.231.10.1/32 via 10.231.7.1") &&
          sh("ip -n " + d_ + " route add 10.231.10.1/32 via 10.231.8.2") &&
          sh("ip -n " + d_ + " route add 10.231.10.2/32 via 10.231.9.2");
  }
  ~netns_trio() {
    for (auto& n : {a_, b_, d_}) sh("ip netns del " + n);
  }
  bool ok() const { return ok_; }
  bool set_data_link(bool up) const {
    auto state = std::string(up ? " up" : " down");
    return sh("ip -n " + a_ + " link set " + ab_ + state) && sh("ip -n " + b_ + " link set " + ba_ + state);
  }
  std::vector<std::string> in_a() const { return {"/usr/sbin/ip", "netns", "exec", a_}; }
  std::vector<std::string> in_b() const { return {"/usr/sbin/ip", "netns", "exec", b_}; }
  std::vector<std::string> in_d() const { return {"/usr/sbin/ip", "netns", "exec", d_}; }

 private:
  static bool sh(const std::string& cmd) { return std::system((cmd + " 2>/dev/null").c_str()) == 0; }
  static bool veth(const std::string& n1, const std::string& i1, const std::string& ip1, const std::string& n2,
                   const std::string& i2, const std::string& ip2) {
    return sh("ip link add " + i1 + " netns " + n1 + " type veth peer name " + i2 + " netns " + n2) &&
           sh("ip -n " + n1 + " addr add " + ip1 + "/24 dev " + i1) && sh("ip -n " + n2 + " addr add " + ip2 + "/24 dev " + i2) &&
           sh("ip -n " + n1 + " link set " + i1 + " up") && sh("ip -n " + n2 + " link set " + i2 + " up") &&
           sh("ip -n " + n1 + " link set lo up") && sh("ip -n " + n2 + " link set lo up");
  }
  std::string a_, b_, d_, ab_, ba_;
  bool ok_ = false;
};

}  // namespace loom::test::cluster
