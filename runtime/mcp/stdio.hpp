// runtime/mcp/stdio.hpp: MCP's stdio transport: newline-delimited JSON-RPC messages. `child_transport` spawns
// a server (fork/exec with pipes, in its own process group) and talks to its stdin/stdout, keeping the tail of
// its stderr for errors; the destructor closes stdin, then kills the group (TERM, then KILL) and reaps it, so no
// zombie or orphan is left. `fd_transport` is the server side: messages on a pair of descriptors (0 and 1).
#pragma once

#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include "runtime/mcp/transport.hpp"

namespace loom::mcp {

// Reads newline-terminated lines from a descriptor, bounded by jsonrpc::max_message_bytes.
class line_reader {
 public:
  explicit line_reader(int fd) : fd_(fd) {}
  // A complete line already buffered, if any.
  std::optional<std::string> take_line();
  // Reads what is available now (the descriptor is non-blocking). Returns false at end of file.
  // Throws transport_error for a line over the limit or a read error.
  bool fill();
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string buf_;
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
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  line_reader out_reader_{-1};
  std::string err_tail_;
  std::string exit_;
};

// The server side: reads messages from `in`, writes them to `out` (loom mcp: 0 and 1).
class fd_transport final : public transport {
 public:
  fd_transport(int in, int out);
  void send(const jsonrpc::json& message) override;
  std::optional<std::string> receive(clock::time_point deadline) override;
  std::string describe() const override { return "stdio client"; }
  // True once the input has ended (the client closed it).
  bool closed() const { return eof_; }

 private:
  int out_;
  line_reader reader_;
  bool eof_ = false;
};

}  // namespace loom::mcp
