// runtime/state/crc32c.hpp: CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and LevelDB), the checksum
// of every value blob in a state file (docs/durability.md). Table-driven, eight bytes a step.
#pragma once

#include <cstddef>
#include <cstdint>

namespace loom::state {

// The CRC-32C of `n` bytes, continuing from `crc` (0 to start): crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;

}  // namespace loom::state
