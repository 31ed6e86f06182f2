// actors/builtins.hpp: the built-in actor kinds (sources, flow, sinks). main() calls register_builtins()
// once on the registry it builds; each kind is one line there.
#pragma once

#include "loom/runtime/registry.hpp"

namespace loom::actors {

void register_builtins(registry& r);

}  // namespace loom::actors
