// runtime/transport/keys.cpp: making, writing and reading CurveZMQ key files.
#include "loom/runtime/transport/keys.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace loom::transport {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string read_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw key_error(fmt::format("cannot read key file {}: {}", path, std::strerror(errno)));
  std::string line;
  std::getline(in, line);
  auto key = trim(line);
  if (!valid_z85_key(key))
    throw key_error(fmt::format("{} does not hold a z85 CurveZMQ key (40 characters); make one with `loom keygen`",
                                path));
  return key;
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    throw key_error(errno == EEXIST ? fmt::format("{} exists; remove it first to make a new key", path)
                                    : fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  // O_CREAT's mode is filtered by the umask; set it exactly.
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  ::close(fd);
  if (!ok) throw key_error(fmt::format("cannot write {}: {}", path, std::strerror(err)));
}

}  // namespace

bool curve_available() { return zmq_has("curve") != 0; }

bool valid_z85_key(const std::string& key) {
  if (key.size() != 40) return false;
  std::array<std::uint8_t, 32> raw{};
  return zmq_z85_decode(raw.data(), key.c_str()) != nullptr;
}

curve_keypair generate_keypair() {
  if (!curve_available()) throw key_error("this libzmq was built without CurveZMQ (zmq_has(\"curve\") is false)");
  std::array<char, 41> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    throw key_error(fmt::format("zmq_curve_keypair failed: {}", zmq_strerror(zmq_errno())));
  return {pub.data(), sec.data()};
}

void write_keypair(const std::string& prefix, const curve_keypair& keys) {
  write_file(prefix + ".key", keys.secret_key + "\n", 0600);
  write_file(prefix + ".pub", keys.public_key + "\n", 0644);
}

std::string keypair_prefix(std::string path) {
  if (path.size() > 4 && (path.ends_with(".key") || path.ends_with(".pub"))) path.resize(path.size() - 4);
  return path;
}

curve_keypair load_keypair(const std::string& prefix) {
  const auto secret_path = prefix + ".key";
  struct stat st {};
  if (::stat(secret_path.c_str(), &st) != 0)
    throw key_error(fmt::format("cannot read key file {}: {}", secret_path, std::strerror(errno)));
  if ((st.st_mode & 077) != 0)
    throw key_error(fmt::format("{} may be read by others (mode {:o}); run `chmod 600 {}`", secret_path,
                                st.st_mode & 0777, secret_path));
  curve_keypair keys{read_key_file(prefix + ".pub"), read_key_file(secret_path)};
  // The public key must belong to the secret key.
  std::array<char, 41> derived{};
  if (zmq_curve_public(derived.data(), keys.secret_key.c_str()) != 0 || keys.public_key != derived.data())
    throw key_error(fmt::format("{}.pub does not belong to {}", prefix, secret_path));
  return keys;
}

std::string load_public_key(const std::string& path) { return read_key_file(path); }

std::string user_key_dir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/loom";  // the XDG spec ignores a relative one
  std::string home;
  if (const char* h = std::getenv("HOME"); h != nullptr && h[0] != '\0') home = h;
  if (home.empty()) {
    passwd pw{}, *found = nullptr;
    std::array<char, 4096> buf{};
    if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr && pw.pw_dir != nullptr)
      home = pw.pw_dir;
  }
  if (home.empty())
    throw key_error("cannot find this user's config folder for the per-user keys: neither XDG_CONFIG_HOME nor HOME is "
                    "set; set one, or give the keys explicitly (loom keygen)");
  return home + "/.config/loom";
}

namespace {

// A folder (and its missing parents) made with mode 0700; an existing one must be ours and private.
void private_dir(const std::string& dir) {
  for (std::size_t at = 1; at != std::string::npos;) {
    at = dir.find('/', at + 1);
    auto part = dir.substr(0, at);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      throw key_error(fmt::format("cannot make {} for the per-user keys: {}", part, std::strerror(errno)));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw key_error(fmt::format("{} is not a folder: the per-user keys live there", dir));
  if (st.st_uid != ::geteuid())
    throw key_error(fmt::format("{} belongs to uid {}, not to this user (uid {}): the per-user keys must be the "
                                "user's own (set XDG_CONFIG_HOME to a folder of yours)",
                                dir, st.st_uid, ::geteuid()));
  if ((st.st_mode & 077) != 0)
    throw key_error(fmt::format("{} may be read by others (mode {:o}); run `chmod 700 {}`", dir, st.st_mode & 0777, dir));
}

// Writes `text` to a temporary file in `dir` with `mode`, then puts it at `path`: with link() when it must
// not replace a file there (false: another process was first), else with rename(). A reader never sees
// half of it.
bool place_file(const std::string& dir, const std::string& path, const std::string& text, mode_t mode, bool replace) {
  std::string tmp = dir + "/.user.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw key_error(fmt::format("cannot create a file in {}: {}", dir, std::strerror(errno)));
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw key_error(fmt::format("cannot write {}: {}", path, std::strerror(err)));
  }
  int rc = replace ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
  err = errno;
  if (!replace || rc != 0) ::unlink(tmp.c_str());
  if (rc == 0) return true;
  if (!replace && err == EEXIST) return false;
  throw key_error(fmt::format("cannot create {}: {}", path, std::strerror(err)));
}

}  // namespace

user_keys user_keypair() {
  if (!curve_available())
    throw key_error("this libzmq was built without CurveZMQ, so there are no per-user keys; pass --insecure to run "
                    "without authentication");
  user_keys out;
  auto dir = user_key_dir();
  private_dir(dir);
  out.prefix = dir + "/user";
  const auto secret_path = out.prefix + ".key", public_path = out.prefix + ".pub";
  struct stat st {};
  if (::stat(secret_path.c_str(), &st) != 0) {
    if (errno != ENOENT) throw key_error(fmt::format("cannot read key file {}: {}", secret_path, std::strerror(errno)));
    auto fresh = generate_keypair();
    out.made = place_file(dir, secret_path, fresh.secret_key + "\n", 0600, false);
  } else if (st.st_uid != ::geteuid()) {
    throw key_error(fmt::format("{} belongs to uid {}, not to this user", secret_path, st.st_uid));
  }
  // The public key follows from the secret one; a missing or stale .pub (a process that stopped between the
  // two files) is written again, the same for every process.
  auto secret = read_key_file(secret_path);
  std::array<char, 41> derived{};
  if (zmq_curve_public(derived.data(), secret.c_str()) != 0)
    throw key_error(fmt::format("{} does not hold a CurveZMQ secret key", secret_path));
  std::string current;
  try {
    current = read_key_file(public_path);
  } catch (const key_error&) {
  }
  if (current != derived.data()) place_file(dir, public_path, std::string(derived.data()) + "\n", 0644, true);
  out.keys = load_keypair(out.prefix);
  return out;
}

}  // namespace loom::transport
