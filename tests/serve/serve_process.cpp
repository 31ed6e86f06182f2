// tests/serve/serve_process.cpp: fork/exec `loom serve`, poll /health, signal and reap.
#include "tests/serve/serve_process.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/cli/process.hpp"

namespace loom::test {

serve_process::serve_process(const std::string& config, const std::vector<std::string>& args) : port_(free_port()) {
  err_file_ = std::string(LOOM_BINARY_DIR) + "/serve-test-" + std::to_string(getpid()) + "-" +
              std::to_string(port_) + ".err";
  std::vector<std::string> argv{loom_binary(), "serve", std::string(LOOM_SOURCE_DIR) + "/" + config, "--port",
                                std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int err = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(err, 2);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  httplib::Client probe{host(), port_};
  probe.set_connection_timeout(std::chrono::milliseconds(200));
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (auto r = probe.Get("/health"); r && r->status == 200) return;
    if (auto status = wait(std::chrono::milliseconds(0)))
      throw std::runtime_error("loom serve exited with status " + std::to_string(*status) + ":\n" + err());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("loom serve never answered /health:\n" + err());
}

// SIGTERM stops `loom serve` with exit 0; anything else (a crash, a sanitizer's abort, a hang) fails the test
// that used this server, with its stderr, even when every request it made was answered.
serve_process::~serve_process() {
  if (pid_ <= 0) return;
  signal(SIGTERM);
  if (auto status = wait(std::chrono::seconds(10))) {
    if (*status != 0) FAIL_CHECK("loom serve exited with status " << *status << " on SIGTERM:\n" << err());
  } else {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    FAIL_CHECK("loom serve did not stop within 10 s of SIGTERM:\n" << err());
  }
  std::remove(err_file_.c_str());
}

void serve_process::signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> serve_process::wait(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return std::nullopt;
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string serve_process::err() const {
  std::ifstream in{err_file_};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace loom::test
