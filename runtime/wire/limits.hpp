// runtime/wire/limits.hpp: the limits of a loom value written as loom.capnp's `Value` (runtime/transport/
// loom.capnp), the same in both formats built on it: the wire's frames (docs/wire.md) and the state file's
// value blobs (docs/durability.md). No Cap'n Proto here: the codecs' own headers name these limits.
#pragma once

#include <cstddef>

namespace loom::wire {

// Nesting of lists and maps in one value, checked both ways (writing and reading).
inline constexpr int max_depth = 48;
// Cap'n Proto's longest list, text or data: a list, map, tensor shape, string, map key or inline payload.
inline constexpr std::size_t max_elements = (std::size_t{1} << 29) - 1;
// A tensor's dimensions, checked when reading.
inline constexpr std::size_t max_dimensions = 64;

}  // namespace loom::wire
