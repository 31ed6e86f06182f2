// bench/memory_bench.cpp: peak memory of a real `loom run` process for a blob stream through a rate limit:
// bounded by edge capacities, so 10x the messages should not move it. The figure is the run's own
// "peak memory" (VmHWM, which starts fresh at exec; wait4's ru_maxrss would include this process's).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "bench/bench.hpp"

namespace loom::bench {

memory_point blob_memory(const std::string& loom_binary, const std::string& config, std::int64_t messages) {
  auto count = std::to_string(messages);
  std::vector<std::string> args{loom_binary, "run", config, "--set", "blobs.count=" + count,
                                "--set", "count.expect=" + count, "--set", "limit.rate=20000"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int err[2];
  if (pipe(err) != 0) throw std::runtime_error("pipe failed");
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], 2);
    close(err[0]);
    close(err[1]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(err[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  memory_point m;
  m.messages = messages;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::smatch match;
  if (std::regex_search(text, match, std::regex(R"(peak memory ([0-9.]+) MiB)")))
    m.peak_rss_kib = static_cast<long>(std::stod(match[1]) * 1024);
  return m;
}

}  // namespace loom::bench
