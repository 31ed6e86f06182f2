// tests/tools/tool_call.hpp: calls a tool node the way the runtime does (the request checked against the kind's
// call_spec, defaults filled), outside any runtime.
#pragma once

#include "loom/runtime/schema.hpp"
#include "tests/actors/harness.hpp"

namespace loom::test {

inline value call_tool(running& n, std::string_view kind, value_map request) {
  const auto* spec = builtins().find_kind(kind);
  REQUIRE(spec != nullptr);
  REQUIRE(spec->call.has_value());
  return n.node->on_call(n.ctx, check_call_request(*spec->call, value{std::move(request)}));
}

}  // namespace loom::test
