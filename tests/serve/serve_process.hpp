// tests/serve/serve_process.hpp: a real `loom serve` child process for the tests: started on a free port
// of 127.0.0.1, ready once /health answers, stopped with a signal (SIGTERM, or SIGKILL when it outlives
// its deadline). Its stderr goes to a file that a failed check can print.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/ports.hpp"

namespace loom::test {

class serve_process {
 public:
  // Starts `loom serve CONFIG --port P ARGS...` (CONFIG relative to the source tree) and waits up to 30 s
  // for GET /health; throws std::runtime_error with its stderr when it exits or never answers.
  explicit serve_process(const std::string& config, const std::vector<std::string>& args = {});
  ~serve_process();
  serve_process(const serve_process&) = delete;
  serve_process& operator=(const serve_process&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string host() const { return "127.0.0.1"; }

  // Sends `sig`.
  void signal(int sig);
  // Waits up to `deadline` for the exit; the exit status (128+N for signal N), or nullopt past the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline);
  std::string err() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string err_file_;
};

}  // namespace loom::test
