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
// Reads one public key file (PREFIX.pub).
std::string load_public_key(const std::string& path);

}  // namespace loom::transport
