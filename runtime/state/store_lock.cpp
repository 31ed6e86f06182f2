// runtime/state/store_lock.cpp: the run's lock, an flock on DIR/lock (store.hpp, docs/durability.md): taking
// it for a live run, asking whether one holds it, and dropping a state file that no live run holds.
#include "loom/runtime/state/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "loom/runtime/state/store_detail.hpp"

namespace loom::state {

namespace fs = std::filesystem;
using namespace detail;

namespace {

std::string hostname() {
  std::array<char, 256> h{};
  if (gethostname(h.data(), h.size() - 1) != 0) return "?";
  return h.data();
}

int open_lock_file(const fs::path& dir) {
  auto path = dir / lock_file_name;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw error(error::kind::io, fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  return fd;
}

// flock(LOCK_EX | LOCK_NB) on DIR/lock: the fd when taken, -1 when another process holds it.
int try_lock(const fs::path& dir) {
  int fd = open_lock_file(dir);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return -1;
    throw error(error::kind::io,
                fmt::format("{}: cannot lock: {}", (dir / lock_file_name).string(), std::strerror(e)));
  }
  return fd;
}

}  // namespace

void store::drop(const fs::path& dir) {
  auto file = dir / state_file_name;
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw error(error::kind::missing, fmt::format("{} holds no loom state (no {})", dir.string(), state_file_name));
  check_header(file);  // never deletes a file that is not loom's; a damaged one may go
  try {
    check_stamp(file);
  } catch (const error& e) {
    if (e.why != error::kind::damaged) throw;
  }
  int fd = try_lock(dir);
  if (fd < 0)
    throw error(error::kind::held, fmt::format("{} belongs to a live run; stop it before dropping its state", dir.string()));
  run_lock held_while_removing(fd);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    fs::remove(fs::path(file.string() + suffix), ec);
    if (ec) throw error(error::kind::io, fmt::format("{}{}: cannot remove: {}", file.string(), suffix, ec.message()));
  }
  fs::remove(dir / lock_file_name, ec);
  fs::remove(dir, ec);  // only when empty; a DIR that holds other files stays
}

bool store::held(const fs::path& dir) {
  int fd = try_lock(dir);
  if (fd < 0) return true;
  ::close(fd);
  return false;
}

run_lock store::lock() {
  int fd = try_lock(dir_);
  if (fd < 0) {
    auto pid = meta("pid"), host = meta("host");
    throw error(error::kind::held,
                fmt::format("{} belongs to a live run (pid {} on {})", dir_.string(), pid.value_or("?"), host.value_or("?")));
  }
  run_lock l(fd);
  if (access_ == access::read_write) {
    set_meta("pid", std::to_string(::getpid()));
    set_meta("host", hostname());
  }
  return l;
}

// ---------------------------------------------------------------------------------------------- run_lock

run_lock& run_lock::operator=(run_lock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

run_lock::~run_lock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor releases the flock
}

}  // namespace loom::state
