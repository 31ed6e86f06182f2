// tests/cli/process.cpp: fork/exec with two pipes, read with poll until exit or deadline.
#include "tests/cli/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace loom::test {

std::string loom_binary() { return std::string(LOOM_BINARY_DIR) + "/bin/loom"; }

std::filesystem::path config_work_dir(const std::string& name) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("loom-cli-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "out");
  fs::copy(fs::path(LOOM_SOURCE_DIR) / "configs", dir / "configs", fs::copy_options::recursive);
  return dir;
}

process_result run_process(const std::vector<std::string>& argv, const process_options& o) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe failed");
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    close(out[1]);
    close(err[1]);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) _exit(127);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  process_result r;
  bool out_open = true, err_open = true, signalled = false;
  char buf[65536];
  while (out_open || err_open) {
    auto now = std::chrono::steady_clock::now();
    if (now - t0 > o.deadline) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (o.sigint_after && !signalled && now - t0 >= *o.sigint_after &&
        (o.sigint_when_stdout_has.empty() || r.out.find(o.sigint_when_stdout_has) != std::string::npos) &&
        (!o.sigint_when || o.sigint_when())) {
      kill(pid, SIGINT);
      signalled = true;
      r.sigint_at = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (poll(fds, 2, 20) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
    }
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.status = 128 + WTERMSIG(status);
  return r;
}

}  // namespace loom::test
