// tests/fuzz/fuzz_graph.cpp: libFuzzer over the YAML loader and the validator with the built-in kinds.
// Any input must give a graph or diagnostics: never a crash, an exception out of the loader, or a hang.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "loom/actors/builtins.hpp"
#include "loom/graph/export.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const loom::registry kinds = [] {
    loom::registry r;
    loom::actors::register_builtins(r);
    return r;
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  loom::graph::diagnostics diags;
  auto g = loom::graph::load_graph_text(text, "fuzz.yaml", diags);
  if (g) {
    loom::graph::validate(*g, kinds, diags);
    if (!diags.has_errors()) {
      loom::graph::apply_defaults(*g, kinds);
      (void)loom::graph::to_dot(*g);
      (void)loom::graph::to_mermaid(*g);
    }
  }
  (void)diags.str();
  return 0;
}
