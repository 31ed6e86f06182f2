// runtime/serve/connection_watch.hpp: whether the client of a waiting HTTP request has gone (closed its side,
// or the connection broke), so `loom serve` can stop the run it waits for. httplib does not hand a handler
// its socket: the watch finds it once in /proc/self/fd by the request's addresses and then polls it.
#pragma once

#include <chrono>
#include <string>

namespace loom::serve {

class connection_watch {
 public:
  // The request's client address and port and the local port it came in on (httplib::Request's
  // remote_addr, remote_port, local_port).
  connection_watch(std::string remote_addr, int remote_port, int local_port);

  // Checked cheaply: false before the request has waited 100 ms, then looked at most every 50 ms (the
  // socket is looked up once). Once gone, always gone. Data waiting (a pipelined request) is not a close.
  bool gone();
  bool was_gone() const { return gone_; }

 private:
  using clock = std::chrono::steady_clock;
  std::string remote_addr_;
  int remote_port_;
  int local_port_;
  clock::time_point next_ = clock::now() + std::chrono::milliseconds(100);
  static constexpr int unknown = -2;  // not looked up yet; -1: not found
  int fd_ = unknown;
  bool gone_ = false;
};

}  // namespace loom::serve
