// tests/cli/child.hpp: a `loom` child process for tests that kill it or wait for it (durable runs,
// approvals): its stdout and stderr go to a file, every wait has a deadline, and a child still running when
// the test ends is killed.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace loom::test {

using clock_type = std::chrono::steady_clock;

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A `loom` child with stdout and stderr in files, to be killed or waited for.
struct child {
  pid_t pid = -1;
  clock_type::time_point started;
  std::filesystem::path err_file;

  child(const std::vector<std::string>& argv, const std::filesystem::path& log) : started(clock_type::now()), err_file(log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    auto log_path = log.string();
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      int null = ::open("/dev/null", O_RDONLY);
      dup2(null, 0);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  // The exit status (128+N for signal N); the child is killed (and the test fails) past the deadline.
  int wait(std::chrono::seconds deadline = std::chrono::seconds(120)) {
    for (;;) {
      int st = 0;
      auto r = ::waitpid(pid, &st, WNOHANG);
      if (r == pid) {
        pid = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      if (clock_type::now() - started > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        pid = -1;
        FAIL("a loom process passed its deadline: " << read_file(err_file));
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  // SIGKILL once `ready` holds and `after` has passed since it did; true when the kill found it running.
  template <class Ready>
  bool kill_when(Ready ready, std::chrono::milliseconds after) {
    std::optional<clock_type::time_point> since;
    for (;;) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return false;  // it ended first
      }
      if (!since && ready()) since = clock_type::now();
      if (since && clock_type::now() - *since >= after) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        pid = -1;
        return true;
      }
      REQUIRE_MESSAGE(clock_type::now() - started < std::chrono::seconds(120), read_file(err_file));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
  }
};


}  // namespace loom::test
