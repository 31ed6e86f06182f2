// runtime/state/value_codec.hpp: loom values <-> the blobs of a state file (docs/durability.md, "Value
// blobs"). A blob is an 8-byte header ("LV", format 1, 0, then the CRC-32C of the rest, little-endian) and one
// Cap'n Proto message whose root is loom.capnp's `Value` (the wire's schema, runtime/transport/loom.capnp),
// with every payload inline. The value is written and read by the one writer and reader that the wire shares
// (runtime/wire/value_capnp.hpp), with the same limits (runtime/wire/limits.hpp). Decoding trusts no byte: the
// checksum first, then Cap'n Proto's traversal and nesting limits, then loom's own depth limit and the checks
// of every tensor; each failure is a decode_error with one line saying what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "loom/runtime/value.hpp"
#include "loom/runtime/wire/limits.hpp"

namespace loom::state {

using blob = std::vector<std::byte>;

// Nesting of lists and maps in one value, checked both ways: the wire's limit.
inline constexpr int max_depth = wire::max_depth;
// The largest blob: SQLite's own limit on one BLOB (SQLITE_MAX_LENGTH's default, 10^9 bytes).
inline constexpr std::size_t max_blob_bytes = 1'000'000'000;
inline constexpr std::size_t blob_header_bytes = 8;

// A value that cannot be kept: a tensor on a device, nesting deeper than max_depth, a blob past
// max_blob_bytes or a list longer than Cap'n Proto's 2^29 - 1 elements.
struct encode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Bytes that are not a blob this loom wrote: one line, without the blob's name (the store adds it).
struct decode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

blob encode(const value& v);
// A sequence of values (a link's values in flight) as one blob whose root is a list: decode gives a list.
blob encode_list(std::span<const value> values);

value decode(std::span<const std::byte> bytes);
// decode, then require a list; returns its elements.
value_list decode_list(std::span<const std::byte> bytes);

}  // namespace loom::state
