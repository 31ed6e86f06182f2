// runtime/transport/keys.hpp: CurveZMQ key pairs on disk, as written by `loom keygen --out PREFIX`:
// PREFIX.key holds the secret key (z85, mode 0600) and PREFIX.pub the public key (z85). Both are one line.
#pragma once

#include <stdexcept>
#include <string>

namespace loom::transport {

struct curve_keypair {
  std::string public_key;  // z85, 40 characters
  std::string secret_key;  // z85, 40 characters
};

// Thrown for a key that cannot be made, read or used; the message names the file and the fix.
struct key_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// True when this libzmq was built with CurveZMQ (zmq_has("curve")).
bool curve_available();
// A fresh key pair (zmq_curve_keypair); throws key_error when curve is not available.
curve_keypair generate_keypair();
// True when `key` is 40 z85 characters that decode to 32 bytes.
bool valid_z85_key(const std::string& key);
// Writes PREFIX.key (created with mode 0600, never overwritten) and PREFIX.pub (mode 0644).
void write_keypair(const std::string& prefix, const curve_keypair& keys);
// Reads PREFIX.key and PREFIX.pub; refuses a secret key file that group or others may read.
curve_keypair load_keypair(const std::string& prefix);
// "keys/cluster.key", "keys/cluster.pub" or "keys/cluster" -> "keys/cluster": the prefix load_keypair() takes,
// from what a user names (--key, a cluster file's key).
std::string keypair_prefix(std::string path);
// Reads one public key file (PREFIX.pub).
std::string load_public_key(const std::string& path);

// The per-user key pair: what a worker and a driver use when given no keys (docs/cluster.md, Security).
// It lives in user_key_dir() as user.key (0600) and user.pub; the folder is 0700. Only the processes of
// the user who owns it (and root) can read it, so a worker started without key options lets in only
// drivers of its own user.
struct user_keys {
  curve_keypair keys;
  std::string prefix;  // DIR/user: the files are prefix + ".key" and ".pub"
  bool made = false;   // this call made the pair (its first use)
};
// $XDG_CONFIG_HOME/loom when XDG_CONFIG_HOME is an absolute path, else $HOME/.config/loom (HOME unset: the
// password database's home of this user).
std::string user_key_dir();
// Finds the per-user pair, or makes it on first use: the folder (and missing parents) with mode 0700, the
// secret key written whole to a temporary file and then linked into place, so two processes that start at
// once agree on one pair. Refuses a folder or key file that another user owns or that group or others may
// read. Throws key_error naming the path and the fix.
user_keys user_keypair();

}  // namespace loom::transport
