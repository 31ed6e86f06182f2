// tests/observe/prometheus.hpp: the real Prometheus (Debian's `prometheus`) for the metrics tests: started on
// a free loopback port with a scrape config the test writes, ready once /-/ready answers, queried through
// its HTTP API, stopped (SIGTERM, then SIGKILL) when it goes out of scope. Plus a background child process
// (a `loom run` that holds its /metrics) with its stderr in a file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace loom::test {

// A child process, stdout and stderr to one file; killed (SIGKILL) if still running when destroyed.
class child {
 public:
  child(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  void signal(int sig) const;
  // The exit status (128+N for signal N), or -1 if it is still running after `limit`.
  int wait_exit(std::chrono::milliseconds limit);
  std::string log() const;
  // Waits up to `limit` for `text` in the log.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds limit) const;

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

struct series {
  std::map<std::string, std::string> labels;
  double value = 0;
};

class prometheus {
 public:
  // Scrapes each of `targets` ("127.0.0.1:PORT") every 200 ms. Throws std::runtime_error (with its log)
  // when it does not start within 30 s.
  prometheus(const std::vector<std::string>& targets, const std::filesystem::path& dir)
      : prometheus(std::map<std::string, std::vector<std::string>>{{"loom", targets}}, dir) {}
  // One scrape job per entry: job name -> targets.
  prometheus(const std::map<std::string, std::vector<std::string>>& jobs, const std::filesystem::path& dir);
  ~prometheus();
  // An instant query; throws std::runtime_error when Prometheus says it failed.
  std::vector<series> query(const std::string& expr) const;
  // Queries until `ok` holds for the result or `limit` passes; the last result.
  std::vector<series> query_until(const std::string& expr, const std::function<bool(const std::vector<series>&)>& ok,
                                  std::chrono::milliseconds limit) const;
  std::string log() const { return proc_->log(); }

 private:
  int port_ = 0;
  std::unique_ptr<child> proc_;
};

// GET http://ADDRESS/metrics ("127.0.0.1:PORT"); the body, or "" when it does not answer 200.
std::string get_metrics(const std::string& address);
// `promtool check metrics` on `text`: its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text);

// The rows of a summary table (stderr of `loom run`): node -> {in, out}. Replicated nodes ("work x2") by name.
std::map<std::string, std::pair<double, double>> summary_rows(const std::string& err);

}  // namespace loom::test
