// tests/observe/prometheus.cpp: see prometheus.hpp.
#include "tests/observe/prometheus.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/serve/serve_process.hpp"

namespace loom::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

child::child(const std::vector<std::string>& argv, const fs::path& log) : log_(log) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
}

child::~child() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void child::signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

int child::wait_exit(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= end) return -1;
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

std::string child::log() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool child::wait_for_log(const std::string& text, std::chrono::milliseconds limit) const {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

prometheus::prometheus(const std::map<std::string, std::vector<std::string>>& jobs, const fs::path& dir)
    : port_(free_port()) {
  fs::create_directories(dir / "tsdb");
  std::string config = "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n";
  for (const auto& [job, targets] : jobs) {
    std::string list;
    for (const auto& t : targets) list += (list.empty() ? "'" : ", '") + t + "'";
    config += "  - job_name: " + job + "\n    static_configs:\n      - targets: [" + list + "]\n";
  }
  std::ofstream(dir / "prometheus.yml") << config;
  proc_ = std::make_unique<child>(
      std::vector<std::string>{"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                               "--storage.tsdb.path=" + (dir / "tsdb").string(),
                               "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
      dir / "prometheus.log");
  httplib::Client c{"127.0.0.1", port_};
  c.set_connection_timeout(200ms);
  auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    if (auto r = c.Get("/-/ready"); r && r->status == 200) return;
    if (proc_->wait_exit(0ms) >= 0) throw std::runtime_error("prometheus exited:\n" + proc_->log());
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("prometheus was not ready within 30 s:\n" + proc_->log());
}

prometheus::~prometheus() {
  proc_->signal(SIGTERM);
  if (proc_->wait_exit(10s) < 0) proc_.reset();  // SIGKILL
}

std::vector<series> prometheus::query(const std::string& expr) const {
  httplib::Client c{"127.0.0.1", port_};
  c.set_read_timeout(5s);
  auto r = c.Post("/api/v1/query", httplib::Params{{"query", expr}});
  if (!r) throw std::runtime_error("prometheus did not answer the query " + expr);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success")
    throw std::runtime_error("query " + expr + " failed: " + r->body);
  std::vector<series> out;
  for (const auto& s : j["data"]["result"]) {
    series x;
    for (auto it = s["metric"].begin(); it != s["metric"].end(); ++it) x.labels[it.key()] = it.value().get<std::string>();
    x.value = std::stod(s["value"][1].get<std::string>());
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<series> prometheus::query_until(const std::string& expr,
                                            const std::function<bool(const std::vector<series>&)>& ok,
                                            std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto r = query(expr);
    if (ok(r) || std::chrono::steady_clock::now() >= until) return r;
    std::this_thread::sleep_for(100ms);
  }
}

std::string get_metrics(const std::string& address) {
  auto colon = address.rfind(':');
  httplib::Client c{address.substr(0, colon), std::stoi(address.substr(colon + 1))};
  c.set_read_timeout(5s);
  auto r = c.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

std::pair<int, std::string> promtool_check(const std::string& text) {
  auto path = fs::temp_directory_path() / ("loom-promtool-" + std::to_string(getpid()) + ".prom");
  std::ofstream(path) << text;
  std::string out;
  auto cmd = "promtool check metrics < " + path.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[512];
  while (auto n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  fs::remove(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::map<std::string, std::pair<double, double>> summary_rows(const std::string& err) {
  std::map<std::string, std::pair<double, double>> rows;
  std::istringstream lines(err);
  bool in_table = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("node ", 0) == 0 && line.find(" kind ") != std::string::npos) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    std::istringstream cols(line);
    std::string name, second, kind, in, out;
    if (!(cols >> name >> second)) continue;
    if (second.size() > 1 && second[0] == 'x' && std::isdigit(static_cast<unsigned char>(second[1]))) {
      if (!(cols >> kind)) continue;
    } else {
      kind = second;
    }
    if (!(cols >> in >> out)) continue;
    try {
      rows[name] = {std::stod(in), std::stod(out)};
    } catch (const std::exception&) {
    }
  }
  return rows;
}

}  // namespace loom::test
