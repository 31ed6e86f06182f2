// runtime/transport/keys.cpp: making, writing and reading CurveZMQ key files.
#include "runtime/transport/keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <array>
#include <cerrno>
#include <cstdint>
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

}  // namespace loom::transport
