// tests/cli/process.hpp: runs the real `loom` binary as a child process and captures its exit status,
// stdout and stderr, with a deadline (the child is killed past it). Optionally sends SIGINT after a delay.
#pragma once

#include <filesystem>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace loom::test {

struct process_result {
  int status = -1;  // exit status; 128+N when killed by signal N
  std::string out;
  std::string err;
  double seconds = 0;
  double sigint_at = -1;  // seconds after start when SIGINT was sent; -1: not sent
  bool timed_out = false;
};

struct process_options {
  std::chrono::milliseconds deadline{60000};
  std::optional<std::chrono::milliseconds> sigint_after;  // send SIGINT this long after start
  // With sigint_after: send SIGINT only once this text appeared on stdout (the run is under way).
  std::string sigint_when_stdout_has;
  std::string cwd;
  // With sigint_after: send SIGINT only once this returns true (checked every 20 ms).
  std::function<bool()> sigint_when;
};

process_result run_process(const std::vector<std::string>& argv, const process_options& o = {});

// build/bin/loom, from LOOM_BINARY_DIR.
std::string loom_binary();

// A fresh working folder, $TMPDIR/loom-cli-NAME-PID, with a copy of configs/ and an out/ folder, as the
// configs expect.
std::filesystem::path config_work_dir(const std::string& name);

}  // namespace loom::test
