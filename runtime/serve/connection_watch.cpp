// runtime/serve/connection_watch.cpp: finding a request's socket in /proc/self/fd and polling it for a close.
#include "loom/runtime/serve/connection_watch.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

namespace loom::serve {
namespace {

// The port of a socket address, and its address as text.
std::optional<std::pair<std::string, int>> address_of(const sockaddr_storage& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    return std::pair{std::string(text), static_cast<int>(ntohs(in.sin_port))};
  }
  if (a.ss_family == AF_INET6) {
    const auto& in = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &in.sin6_addr, text, sizeof text);
    return std::pair{std::string(text), static_cast<int>(ntohs(in.sin6_port))};
  }
  return std::nullopt;
}

// The descriptor of this process's connection from remote_addr:remote_port to local_port, or -1.
// httplib does not hand a handler its socket; a request that waits long enough looks it up once.
int find_connection(const std::string& remote_addr, int remote_port, int local_port) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (auto* e = readdir(dir)) {
    int fd = -1;
    auto name = std::string_view(e->d_name);
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc{}) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    auto l = address_of(local);
    if (!l || l->second != local_port) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    auto p = address_of(peer);
    if (p && p->second == remote_port && p->first == remote_addr) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

// Whether the client closed its side (or the connection broke). Data waiting (a pipelined request) is not
// a close.
bool peer_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace

connection_watch::connection_watch(std::string remote_addr, int remote_port, int local_port)
    : remote_addr_(std::move(remote_addr)), remote_port_(remote_port), local_port_(local_port) {}

bool connection_watch::gone() {
  auto now = clock::now();
  if (now < next_) return false;
  next_ = now + std::chrono::milliseconds(50);
  if (fd_ == unknown) fd_ = find_connection(remote_addr_, remote_port_, local_port_);
  gone_ = gone_ || (fd_ >= 0 && peer_gone(fd_));
  return gone_;
}

}  // namespace loom::serve
