// runtime/mcp/stdio.hpp: MCP's stdio transport: newline-delimited JSON-RPC messages. `child_transport` spawns
// a server (fork/exec with pipes, in its own process group) and talks to its stdin/stdout, keeping the tail of
// its stderr for errors; the destructor closes stdin, then kills the group (TERM, then KILL) and reaps it, so no
// zombie or orphan is left. `fd_transport` is the server side: messages on a pair of descriptors (0 and 1).
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include "loom/runtime/mcp/transport.hpp"

namespace loom::mcp {

// Reads newline-terminated lines from a descriptor, bounded by jsonrpc::max_message_bytes. A longer line is
// an error (transport_error), or, with `discard_oversized`, dropped up to its newline and replaced by the
// line `dropped_line`, in order.
class line_reader {
 public:
  explicit line_reader(int fd, bool discard_oversized = false) : fd_(fd), discard_(discard_oversized) {}
  // A complete line already buffered, if any.
  std::optional<std::string> take_line();
  // Reads what is available now (the descriptor is non-blocking). Returns false at end of file.
  // Throws transport_error for a line over the limit or a read error.
  bool fill();
  int fd() const { return fd_; }
  static constexpr const char* dropped_line = "\x01";

 private:
  void append(std::string_view data);

  int fd_;
  bool discard_ = false;
  bool skipping_ = false;  // inside an oversized line, up to its newline
  std::string buf_;
};

// A self-pipe that ends a poll() from another thread: abort() raises it, the waits poll its fd beside their
// own. Raised once, it stays raised.
class wakeup {
 public:
  wakeup();
  ~wakeup();
  wakeup(const wakeup&) = delete;
  wakeup& operator=(const wakeup&) = delete;
  void raise();
  bool raised() const { return raised_.load(std::memory_order_acquire); }
  int fd() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
  std::atomic<bool> raised_{false};
};

// The server side dropped a message over the size limit (the next message is read normally).
struct message_too_large : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct process_options {
  std::vector<std::string> command;           // program and arguments; the program is looked up in PATH
  std::map<std::string, std::string> env;     // added to (or replacing in) this process's environment
  std::string cwd;                            // "" = this process's
};

class child_transport final : public transport {
 public:
  // Starts the process. Throws transport_error naming the program when it cannot be started.
  explicit child_transport(process_options o);
  ~child_transport() override;
  child_transport(const child_transport&) = delete;
  child_transport& operator=(const child_transport&) = delete;

  void send(const jsonrpc::json& message) override;
  std::optional<std::string> receive(clock::time_point deadline) override;
  std::string describe() const override;
  // Wakes a receive() or send() under way; the destructor then terminates the process group at once (TERM,
  // KILL after 200 ms) instead of first waiting for it to leave on its own.
  void abort() override { wake_.raise(); }
  // The last few KiB the process wrote on stderr.
  std::string stderr_tail();
  pid_t pid() const { return pid_; }
  // Whether the process has exited (reaps it; then its status is in exit_description()).
  bool exited();
  std::string exit_description() const { return exit_; }

 private:
  void drain_stderr();
  std::string gone(const std::string& what);
  void stop();

  process_options o_;
  wakeup wake_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  line_reader out_reader_{-1};
  std::string err_tail_;
  std::string exit_;
};

// The server side: reads messages from `in`, writes them to `out` (loom mcp: 0 and 1). A message over the
// size limit is dropped and receive() throws message_too_large, so the server can answer it and go on.
class fd_transport final : public transport {
 public:
  fd_transport(int in, int out);
  void send(const jsonrpc::json& message) override;
  std::optional<std::string> receive(clock::time_point deadline) override;
  std::string describe() const override { return "stdio client"; }
  void abort() override { wake_.raise(); }
  // True once the input has ended (the client closed it).
  bool closed() const { return eof_; }

 private:
  int out_;
  wakeup wake_;
  line_reader reader_;
  bool eof_ = false;
};

}  // namespace loom::mcp
