// tests/support/ports.hpp: a port on 127.0.0.1 for a test's server or worker to listen on. The one place
// tests choose ports, so that two of them never collide in one process, and none is taken before it is used.
//
// Chosen at random below the kernel's ephemeral range (net.ipv4.ip_local_port_range), never in it: a port
// that bind(0) hands out is one the kernel may hand out again, to the next bind(0) or as the local end of
// any connection another test opens, in the moment between the choice and the worker's listen (CI lost
// runs both ways: two workers given one port, and slurmd's port taken by a connection). A port below the
// range is taken only by an explicit bind. Each is checked free by binding it, and never given twice in
// one process.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>

namespace loom::test {

namespace ports_detail {

// Binds 127.0.0.1:PORT (0: any) and gives the port bound, or 0 when PORT is taken.
inline int try_bind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof a;
  int got = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    got = ntohs(a.sin_port);
  ::close(fd);
  return got;
}

}  // namespace ports_detail

// The lowest port of the kernel's ephemeral range (32768 when it cannot be read).
inline int ephemeral_low() {
  int low = 32768, high = 60999;
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(in >> low >> high)) low = 32768;
  return low;
}

// A port on 127.0.0.1 that nothing is bound to now, below the ephemeral range, not given before in this
// process. Throws after 10,000 taken candidates.
inline int free_port() {
  static std::mutex mutex;
  static std::set<int> given;
  static std::mt19937 random{std::random_device{}()};
  std::lock_guard lock(mutex);
  const int low = 10000, high = ephemeral_low();  // [low, high)
  for (int tries = 0; tries < 10000; ++tries) {
    int port = high - low >= 1024 ? std::uniform_int_distribution<int>(low, high - 1)(random)
                                   : ports_detail::try_bind(0);  // no room below the range: the kernel's pick
    if (port == 0 || given.count(port) != 0) continue;
    if (ports_detail::try_bind(port) != port) continue;
    given.insert(port);
    return port;
  }
  throw std::runtime_error("free_port: no free port on 127.0.0.1 after 10000 tries");
}

}  // namespace loom::test
