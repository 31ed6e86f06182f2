// runtime/placement/cluster.hpp: the hosts a graph may be placed on, read from a cluster file
// (docs/placement.md): each host's name, address, CPUs, memory, GPUs and labels, and the CurveZMQ key files.
// Pure data: the planner reads it, the driver and workers use the addresses and keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loom/graph/diagnostics.hpp"
#include "loom/graph/location.hpp"

namespace loom::placement {

struct gpu {
  std::uint64_t memory = 0;  // bytes; 0: unknown (fits any request, but is never shared)
  std::string name;          // optional, e.g. "A100"
  graph::location where;
};

// A CurveZMQ key file as written, and resolved against the cluster file's folder.
struct key_file {
  std::string path;      // as written
  std::string resolved;  // absolute, or relative to the working directory
  graph::location where;
};

struct host {
  std::string name;     // unique in the cluster; `placement.host` names it
  std::string address;  // tcp://HOST:PORT, where its worker listens
  double cpus = 1;
  std::uint64_t memory = 0;  // bytes; 0: unknown, not limited
  std::vector<gpu> gpus;     // the index in this list is the device number
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written
  // The public key file (PREFIX.pub from `loom keygen`) of this host's own CurveZMQ key pair; resolved
  // against the cluster file's folder. With it, the driver and the other hosts accept only this key as host
  // `name` (each host has its own pair, so one can be revoked alone).
  std::optional<key_file> public_key;
  graph::location where;

  // The value of label `key`, or nullptr.
  const std::string* label(std::string_view key) const;
};

// The default `max_message_size`: the largest part of a message a process accepts (ZMQ_MAXMSGSIZE).
inline constexpr std::uint64_t default_max_message_bytes = std::uint64_t{64} << 20;

struct curve_keys {
  std::optional<key_file> server_key_file;
  std::optional<key_file> client_key_file;
  graph::location where;
};

struct cluster {
  std::string name;  // `name:`, else the file's stem
  std::vector<host> hosts;
  std::optional<curve_keys> curve;  // unset: links between hosts are plain TCP
  std::uint64_t max_message_bytes = default_max_message_bytes;  // `max_message_size:` (a size, e.g. 64 MiB)
  graph::location where;            // the file itself

  // The index of host `name` in `hosts`, or -1.
  int find(std::string_view name) const;
  std::vector<std::string> host_names() const;
};

// Parses `text` as the cluster file `file` (used in locations only). Every problem of the file goes to
// `diags` in one pass; the cluster is returned only when there were none.
std::optional<cluster> load_cluster_text(std::string_view text, const std::string& file, graph::diagnostics& diags);

// Reads and parses a cluster file; a missing, unreadable, empty or binary file is an error in `diags`.
std::optional<cluster> load_cluster_file(const std::string& path, graph::diagnostics& diags);

// "80 GiB", "512 MiB", "1.5 TiB", "100 B": a size for messages.
std::string size_text(std::uint64_t bytes);

}  // namespace loom::placement
