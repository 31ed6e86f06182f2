// runtime/cluster/address_file.hpp: how a started worker tells its starter where it listens. `loom worker
// --address-file F` (and the Python worker, python/loom/worker.py) writes the address it bound (PORT 0:
// the port chosen) and its Slurm node (SLURMD_NODENAME; empty outside Slurm), one per line, to F.tmp, then
// renames it to F, so a reader never sees half of it. The Slurm source reads one per task
// (slurm_step.cpp).
#pragma once

#include <optional>
#include <string>

namespace loom::cluster {

struct worker_address {
  std::string address;  // as bound: tcp://HOST:PORT
  std::string node;     // the Slurm node it runs on; empty outside Slurm
};

// Writes `w` to `path` (via path.tmp and a rename). Throws std::runtime_error naming the file.
void write_address_file(const std::string& path, const worker_address& w);

// The worker's address and node from `path`; nullopt while the file is not there (not written yet).
std::optional<worker_address> read_address_file(const std::string& path);

}  // namespace loom::cluster
