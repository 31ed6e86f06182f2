// cli/keygen.cpp: `loom keygen --out PREFIX`: a CurveZMQ key pair for a worker or driver: PREFIX.key (the
// secret key, mode 0600) and PREFIX.pub (the public key, z85, to give to the peers that must accept it).
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "loom/runtime/transport/keys.hpp"

namespace loom::cli {

int keygen_command(const std::string& prefix) {
  try {
    auto keys = transport::generate_keypair();
    transport::write_keypair(prefix, keys);
    fmt::print("wrote {0}.key (secret, mode 0600) and {0}.pub\npublic key: {1}\n", prefix, keys.public_key);
    return ok;
  } catch (const transport::key_error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return invalid;
  }
}

}  // namespace loom::cli
