// runtime/mcp/stdio.cpp: the stdio transport: a child process's pipes, or the server's own descriptors.
#include "loom/runtime/mcp/stdio.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

extern char** environ;

namespace loom::mcp {
namespace {

constexpr std::size_t stderr_keep = 4096;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int poll_timeout(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1000));
}

// Writes all of `data`, waiting while the pipe is full, until `deadline` or until `wake` is raised.
void write_all(int fd, std::string_view data, clock::time_point deadline, const std::string& who, const wakeup& wake) {
  while (!data.empty()) {
    if (wake.raised()) throw transport_error(who + ": cancelled (the run is stopping)");
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (clock::now() >= deadline) throw transport_error(who + ": not reading its input (write timed out)");
      pollfd p[2] = {{fd, POLLOUT, 0}, {wake.fd(), POLLIN, 0}};
      ::poll(p, 2, poll_timeout(deadline));
      continue;
    }
    throw transport_error(fmt::format("{}: cannot write: {}", who, std::strerror(errno)));
  }
}

std::once_flag ignore_sigpipe;

}  // namespace

wakeup::wakeup() {
  if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0)
    throw transport_error(fmt::format("cannot make a pipe: {}", std::strerror(errno)));
}

wakeup::~wakeup() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

void wakeup::raise() {
  if (raised_.exchange(true, std::memory_order_acq_rel)) return;
  char c = 1;
  ssize_t w = ::write(fds_[1], &c, 1);  // the pipe stays readable: every later poll() returns at once
  (void)w;
}

std::optional<std::string> line_reader::take_line() {
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = buf_.substr(0, nl);
    buf_.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines carry nothing
    return line;
  }
}

void line_reader::append(std::string_view data) {
  if (skipping_) {
    auto nl = data.find('\n');
    if (nl == std::string_view::npos) return;
    data.remove_prefix(nl + 1);
    skipping_ = false;
    buf_.append(dropped_line);
    buf_ += '\n';  // in its place, in order: a line that no JSON text can be
  }
  buf_.append(data);
  auto last = buf_.rfind('\n');
  std::size_t partial = last == std::string::npos ? buf_.size() : buf_.size() - last - 1;
  if (partial <= jsonrpc::max_message_bytes) return;
  if (!discard_)
    throw transport_error(fmt::format("a message is over the limit of {} bytes", jsonrpc::max_message_bytes));
  buf_.erase(last == std::string::npos ? 0 : last + 1);  // keep the complete lines before it
  skipping_ = true;
}

bool line_reader::fill() {
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) {
      append(std::string_view(chunk, static_cast<std::size_t>(n)));
      if (static_cast<std::size_t>(n) < sizeof chunk) return true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    throw transport_error(fmt::format("read error: {}", std::strerror(errno)));
  }
}

child_transport::child_transport(process_options o) : o_(std::move(o)) {
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  if (o_.command.empty() || o_.command[0].empty()) throw transport_error("no command to start");
  int in[2], out[2], err[2], status[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      ::pipe2(status, O_CLOEXEC) != 0)
    throw transport_error(fmt::format("cannot make pipes: {}", std::strerror(errno)));
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_text;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && o_.env.count(std::string(kv.substr(0, eq))) != 0) continue;
    env_text.emplace_back(kv);
  }
  for (const auto& [k, v] : o_.env) env_text.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_text) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : o_.command) argv.push_back(s.data());
  argv.push_back(nullptr);
  // execvpe looks the program up in the PATH of the environment given to it.
  pid_ = ::fork();
  if (pid_ < 0) throw transport_error(fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::signal(SIGPIPE, SIG_DFL);
    int why = 0;
    if (!o_.cwd.empty() && ::chdir(o_.cwd.c_str()) != 0) {
      why = errno;
    } else {
      ::execvpe(argv[0], argv.data(), envp.data());
      why = errno;
    }
    ssize_t w = ::write(status[1], &why, sizeof why);
    (void)w;
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also from the parent: no race with the kill in stop()
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(status[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  int why = 0;
  ssize_t got;
  do got = ::read(status[0], &why, sizeof why);
  while (got < 0 && errno == EINTR);
  ::close(status[0]);
  if (got == static_cast<ssize_t>(sizeof why)) {
    stop();
    bool cwd_failed = !o_.cwd.empty() && ::access(o_.cwd.c_str(), X_OK) != 0;
    throw transport_error(cwd_failed ? fmt::format("cannot enter cwd `{}`: {}", o_.cwd, std::strerror(why))
                                     : fmt::format("cannot start `{}`: {}", o_.command[0], std::strerror(why)));
  }
  set_nonblocking(in_);
  set_nonblocking(out_);
  set_nonblocking(err_);
  out_reader_ = line_reader(out_);
}

child_transport::~child_transport() { stop(); }

void child_transport::stop() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
  if (pid_ > 0 && exit_.empty()) {
    // Closing stdin asks a well-behaved server to leave; then TERM, then KILL, to the whole group. A stopped
    // run (abort) does not wait for the server to leave: TERM at once, KILL 200 ms later.
    bool now = wake_.raised();
    auto until = clock::now() + std::chrono::milliseconds(now ? 0 : 500);
    while (!exited() && clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (exit_.empty()) {
      ::kill(-pid_, SIGTERM);
      until = clock::now() + std::chrono::milliseconds(now ? 200 : 1000);
      while (!exited() && clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (exit_.empty()) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      exit_ = "killed";
    }
  }
  if (pid_ > 0) ::kill(-pid_, SIGKILL);  // anything the server left behind in its group
  for (int* fd : {&out_, &err_})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
}

bool child_transport::exited() {
  if (!exit_.empty()) return true;
  if (pid_ <= 0) return true;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r != pid_) return false;
  exit_ = WIFEXITED(st)     ? fmt::format("exited with status {}", WEXITSTATUS(st))
          : WIFSIGNALED(st) ? fmt::format("killed by signal {}", WTERMSIG(st))
                            : "ended";
  return true;
}

void child_transport::drain_stderr() {
  if (err_ < 0) return;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(err_, chunk, sizeof chunk);
    if (n > 0) {
      err_tail_.append(chunk, static_cast<std::size_t>(n));
      if (err_tail_.size() > 2 * stderr_keep) err_tail_.erase(0, err_tail_.size() - stderr_keep);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      ::close(err_);
      err_ = -1;
    }
    return;
  }
}

std::string child_transport::stderr_tail() {
  drain_stderr();
  std::string t = err_tail_.size() > stderr_keep ? err_tail_.substr(err_tail_.size() - stderr_keep) : err_tail_;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

std::string child_transport::describe() const {
  std::string cmd;
  for (const auto& a : o_.command) cmd += (cmd.empty() ? "" : " ") + a;
  return fmt::format("stdio server `{}`", cmd);
}

std::string child_transport::gone(const std::string& what) {
  // Give the process a moment to finish exiting, so the status and the last of its stderr are known.
  auto until = clock::now() + std::chrono::milliseconds(300);
  while (!exited() && clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::string tail = stderr_tail();
  return fmt::format("{} {}{}{}", describe(), what, exit_.empty() ? "" : " (" + exit_ + ")",
                     tail.empty() ? "; it wrote nothing on stderr" : "; the end of its stderr:\n" + tail);
}

void child_transport::send(const jsonrpc::json& message) {
  if (in_ < 0) throw transport_error(gone("is stopped"));
  std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  try {
    write_all(in_, line, clock::now() + std::chrono::seconds(10), describe(), wake_);
  } catch (const transport_error&) {
    if (wake_.raised()) throw transport_error(describe() + ": cancelled (the run is stopping)");
    throw transport_error(gone("stopped reading its input"));
  }
}

std::optional<std::string> child_transport::receive(clock::time_point deadline) {
  for (;;) {
    if (wake_.raised()) throw transport_error(describe() + ": cancelled (the run is stopping)");
    if (auto line = out_reader_.take_line()) return line;
    if (out_ < 0) throw transport_error(gone("closed its output"));
    // err_ < 0 (its stderr closed): poll() skips a negative descriptor.
    pollfd fds[3] = {{out_, POLLIN, 0}, {wake_.fd(), POLLIN, 0}, {err_, POLLIN, 0}};
    int n = ::poll(fds, 3, poll_timeout(deadline));
    if (n < 0 && errno != EINTR) throw transport_error(fmt::format("poll: {}", std::strerror(errno)));
    if (err_ >= 0 && (fds[2].revents & (POLLIN | POLLHUP)) != 0) drain_stderr();
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      bool more = false;
      try {
        more = out_reader_.fill();
      } catch (const transport_error& e) {
        throw transport_error(gone(std::string("sent a bad message: ") + e.what()));
      }
      if (!more) {
        if (auto line = out_reader_.take_line()) return line;
        throw transport_error(gone("closed its output"));
      }
      continue;
    }
    if (clock::now() >= deadline) return std::nullopt;
  }
}

fd_transport::fd_transport(int in, int out) : out_(out), reader_(in, true) {
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });
  set_nonblocking(in);
}

void fd_transport::send(const jsonrpc::json& message) {
  std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_all(out_, line, clock::now() + std::chrono::seconds(30), describe(), wake_);
}

std::optional<std::string> fd_transport::receive(clock::time_point deadline) {
  for (;;) {
    if (wake_.raised()) throw transport_error("cancelled (the server is stopping)");
    if (auto line = reader_.take_line()) {
      if (*line == line_reader::dropped_line)
        throw message_too_large(fmt::format("a message over the limit of {} bytes was dropped", jsonrpc::max_message_bytes));
      return line;
    }
    if (eof_) throw transport_error("the client closed the input");
    pollfd p[2] = {{reader_.fd(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
    int n = ::poll(p, 2, poll_timeout(deadline));
    if (n < 0 && errno != EINTR) throw transport_error(fmt::format("poll: {}", std::strerror(errno)));
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (!reader_.fill()) eof_ = true;
      continue;
    }
    if (clock::now() >= deadline) return std::nullopt;
  }
}

}  // namespace loom::mcp
