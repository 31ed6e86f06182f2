// runtime/cluster/hosts.cpp: the cluster-file host source (workers started by hand, keys from the file's
// security section) and the choice between it and Slurm.
#include "loom/runtime/cluster/hosts.hpp"

#include <fmt/format.h>

#include "loom/runtime/cluster/slurm.hpp"
#include "loom/runtime/transport/keys.hpp"

#include <algorithm>

namespace loom::cluster {
namespace {

class file_source : public host_source {
 public:
  file_source(std::string path, bool insecure) : path_(std::move(path)), insecure_(insecure) {}

  std::string describe() const override { return "cluster file " + path_; }

  std::optional<placement::cluster> hosts(graph::diagnostics& diags) override {
    return placement::load_cluster_file(path_, diags);
  }

  // The workers are already running; this loads the keys the cluster file names. Either every host has its
  // own key pair (`public_key` per host; the driver's pair is client_key_file), or all share one
  // (server_key_file), the older setup.
  std::string start_workers(placement::cluster& c, const placement::plan&, driver_options& o) override {
    bool host_keys = std::any_of(c.hosts.begin(), c.hosts.end(), [](const auto& h) { return h.public_key.has_value(); });
    if (host_keys && !c.curve)
      return fmt::format("{}: hosts have `public_key` but there is no `security.curve.client_key_file` (the driver's "
                         "own key pair)",
                         path_);
    if (!c.curve) {
      if (insecure_) return {};
      // No keys in the file: the per-user pair, the one a worker started without key options uses.
      try {
        auto mine = transport::user_keypair();
        o.curve = mine.keys;
        o.server_key = mine.keys.public_key;
        o.user_keys = mine.prefix;
      } catch (const std::exception& e) {
        return fmt::format("{} has no `security` section, so the driver uses this user's per-user keys: {}", path_,
                           e.what());
      }
      return {};
    }
    if (insecure_)
      return fmt::format("{}: --insecure, but the file has `security.curve`: drop one of the two", path_);
    for (const auto& h : c.hosts) {
      if (h.public_key || !host_keys) continue;
      return fmt::format("{}:{}: host `{}` has no `public_key`, but other hosts do: give each host its own key pair "
                         "(loom keygen --out keys/{})",
                         path_, h.where.line, h.name, h.name);
    }
    for (const auto& h : c.hosts) {
      if (!h.public_key) continue;
      try {
        o.host_keys[h.name] = transport::load_public_key(transport::keypair_prefix(h.public_key->resolved) + ".pub");
      } catch (const std::exception& e) {
        return fmt::format("{}:{}: `public_key` of host `{}`: {}", path_, h.public_key->where.line, h.name, e.what());
      }
    }
    try {
      const auto& server = c.curve->server_key_file;
      const auto& client = c.curve->client_key_file ? c.curve->client_key_file : server;
      if (!host_keys && !server)
        throw transport::key_error("security.curve needs server_key_file (or a `public_key` per host)");
      if (!client) throw transport::key_error("security.curve needs client_key_file: the driver's own key pair");
      if (server) o.server_key = transport::load_public_key(transport::keypair_prefix(server->resolved) + ".pub");
      o.curve = transport::load_keypair(transport::keypair_prefix(client->resolved));
    } catch (const std::exception& e) {
      return fmt::format("{}: security.curve: {}", path_, e.what());
    }
    return {};
  }

 private:
  std::string path_;
  bool insecure_ = false;
};

}  // namespace

std::unique_ptr<host_source> file_hosts(const std::string& path, bool insecure) {
  return std::make_unique<file_source>(path, insecure);
}

std::unique_ptr<host_source> make_host_source(const std::string& spec, const host_source_options& options) {
  if (spec == "slurm") return slurm::slurm_hosts(options);
  return file_hosts(spec, options.insecure);
}

}  // namespace loom::cluster
