// tests/graph/test_support.hpp: loading and validating graph text in one step for tests.
#pragma once

#include <string>

#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "test_catalog.hpp"

namespace loom::graph::testing {

// Loads `text` as FILE `t.yaml` and, when it loaded, validates it; returns every diagnostic as printed.
inline std::string check_text(const std::string& text, const std::string& file = "t.yaml") {
  diagnostics diags;
  auto g = load_graph_text(text, file, diags);
  if (g) validate(*g, test_catalog{}, diags);
  return diags.str();
}

}  // namespace loom::graph::testing
