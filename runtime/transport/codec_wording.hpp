// runtime/transport/codec_wording.hpp: the wire's lines for a value it cannot carry, shared by the encoder
// (codec_encode.cpp) and the decoder (codec_decode.cpp); tests/transport and docs/wire.md name them.
#pragma once

#include "loom/runtime/wire/value_capnp.hpp"

namespace loom::transport::detail {

inline constexpr wire::wording wire_words{
    .too_deep = "value nested deeper than {} lists and maps",
    .too_long = "list of {1} elements is too long for the wire",
    .too_large = "{} of {} bytes is too large for the wire (at most {})",
    .on_device = "tensor on device {} cannot go on the wire; copy it to the host first",
    .dimensions = "tensor of {} dimensions (at most {})",
    .negative = "tensor dimension {} is negative",
    .overflow = "tensor shape overflows 64 bits",
    .data_size = "tensor {} of shape [{}] needs {} bytes of data, got {}",
};

}  // namespace loom::transport::detail
