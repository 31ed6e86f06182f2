// tests/transport/proxy.hpp: a TCP proxy on 127.0.0.1 between two endpoints that can reset every
// connection through it at once (RST, whatever sits in the buffers is lost): a TCP reset mid-run, on
// demand. One thread, poll(2).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace loom::test {

class reset_proxy {
 public:
  // Forwards to tcp://127.0.0.1:`to_port`; address() is where to connect.
  explicit reset_proxy(int to_port) : to_port_(to_port) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listen_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~reset_proxy() {
    stop_ = true;
    thread_.join();
    for (auto& p : pairs_) close_pair(p);
    ::close(listen_);
  }
  std::string address() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  void reset_all() { reset_ = true; }
  int resets() const { return resets_done_; }

 private:
  struct pair {
    int down = -1, up = -1;
  };
  static void hard_close(int fd) {
    linger l{1, 0};  // RST, not FIN
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd);
  }
  static void close_pair(pair& p) {
    if (p.down >= 0) hard_close(p.down);
    if (p.up >= 0) hard_close(p.up);
    p.down = p.up = -1;
  }
  void run() {
    char buf[65536];
    while (!stop_) {
      if (reset_.exchange(false)) {
        for (auto& p : pairs_) close_pair(p);
        pairs_.clear();
        ++resets_done_;
      }
      std::vector<pollfd> fds{{listen_, POLLIN, 0}};
      for (auto& p : pairs_) {
        fds.push_back({p.down, POLLIN, 0});
        fds.push_back({p.up, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 5) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = ::accept(listen_, nullptr, nullptr);
        int u = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(to_port_));
        if (c >= 0 && ::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
          pairs_.push_back({c, u});
        } else {
          if (c >= 0) ::close(c);
          ::close(u);
        }
        continue;  // fds no longer matches pairs_
      }
      std::vector<std::size_t> dead;
      for (std::size_t i = 0; i < pairs_.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          auto& f = fds[1 + 2 * i + side];
          if (!(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
          int from = side == 0 ? pairs_[i].down : pairs_[i].up, to = side == 0 ? pairs_[i].up : pairs_[i].down;
          auto n = ::read(from, buf, sizeof buf);
          if (n <= 0) {
            dead.push_back(i);
            break;
          }
          for (ssize_t off = 0; off < n;) {
            auto w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
            if (w <= 0) break;
            off += w;
          }
        }
      }
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
        close_pair(pairs_[*it]);
        pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(*it));
      }
    }
  }

  int to_port_;
  int listen_ = -1;
  int port_ = 0;
  std::vector<pair> pairs_;
  std::atomic<bool> stop_{false}, reset_{false};
  std::atomic<int> resets_done_{0};
  std::thread thread_;
};

}  // namespace loom::test
