// runtime/cluster/address_file.cpp: a worker's address file, written whole then renamed, and read back.
#include "loom/runtime/cluster/address_file.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace loom::cluster {

void write_address_file(const std::string& path, const worker_address& w) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << w.address << "\n" << w.node << "\n";
    if (!out) throw std::runtime_error(fmt::format("cannot write the address file {}", path));
  }
  std::filesystem::rename(tmp, path);
}

std::optional<worker_address> read_address_file(const std::string& path) {
  std::ifstream in(path);
  worker_address w;
  if (!(in >> w.address)) return std::nullopt;
  in >> w.node;
  return w;
}

}  // namespace loom::cluster
