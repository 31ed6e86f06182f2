// graph/scalar.hpp (private): how loom reads a plain YAML scalar and a size such as "512MiB". Shared by the
// loader, parse_scalar() and config::str(), so a value renders back to text that reads the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "loom/graph/config.hpp"

namespace loom::graph {

// A plain (unquoted) scalar: null (`null`, `~`, empty), bool, int (decimal or 0x hex), float (`1.5`, `1e3`,
// `.inf`, `.nan`), else the string itself.
config resolve_plain_scalar(std::string_view text);

// A size in bytes: a non-negative integer, or a number with a unit (KiB/MiB/GiB/TiB: 1024-based;
// KB/MB/GB/TB: 1000-based; B: bytes). Sets `error` and returns nullopt for anything else.
std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error);

}  // namespace loom::graph
