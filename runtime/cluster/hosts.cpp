// runtime/cluster/hosts.cpp: the cluster-file host source (workers started by hand, keys from the file's
// security section) and the choice between it and Slurm.
#include "runtime/cluster/hosts.hpp"

#include <fmt/format.h>

#include "runtime/cluster/slurm.hpp"
#include "runtime/transport/keys.hpp"

namespace loom::cluster {
namespace {

// "keys/cluster.key" or "keys/cluster" -> "keys/cluster", the prefix load_keypair() takes.
std::string key_prefix(std::string path) {
  if (path.size() > 4 && (path.ends_with(".key") || path.ends_with(".pub"))) path.resize(path.size() - 4);
  return path;
}

class file_source : public host_source {
 public:
  explicit file_source(std::string path) : path_(std::move(path)) {}

  std::string describe() const override { return "cluster file " + path_; }

  std::optional<placement::cluster> hosts(graph::diagnostics& diags) override {
    return placement::load_cluster_file(path_, diags);
  }

  std::string start_workers(placement::cluster& c, const placement::plan&, driver_options& o) override {
    if (!c.curve) return {};
    try {
      const auto& server = c.curve->server_key_file;
      const auto& client = c.curve->client_key_file ? c.curve->client_key_file : server;
      if (!server) throw transport::key_error("security.curve needs server_key_file");
      o.server_key = transport::load_public_key(key_prefix(server->resolved) + ".pub");
      o.curve = transport::load_keypair(key_prefix(client->resolved));
    } catch (const std::exception& e) {
      return fmt::format("{}: security.curve: {}", path_, e.what());
    }
    return {};
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<host_source> file_hosts(const std::string& path) { return std::make_unique<file_source>(path); }

std::unique_ptr<host_source> make_host_source(const std::string& spec, const host_source_options& options) {
  if (spec == "slurm") return slurm::slurm_hosts(options);
  return file_hosts(spec);
}

}  // namespace loom::cluster
