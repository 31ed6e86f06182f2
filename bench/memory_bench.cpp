// bench/memory_bench.cpp: peak memory of a real `loom run` process (wait4's ru_maxrss) for a blob stream
// through a rate limit: bounded by edge capacities, so 10x the messages should not move it.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "bench/bench.hpp"

namespace loom::bench {

memory_point blob_memory(const std::string& loom_binary, const std::string& config, std::int64_t messages) {
  auto count = std::to_string(messages);
  std::vector<std::string> args{loom_binary, "run", "-q", config, "--set", "blobs.count=" + count,
                                "--set", "count.expect=" + count, "--set", "limit.rate=20000"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  memory_point m;
  m.messages = messages;
  m.peak_rss_kib = ru.ru_maxrss;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return m;
}

}  // namespace loom::bench
