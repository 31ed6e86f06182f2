// Every file in tests/configs/broken/ loads with errors, and each `# expect: LINE:COL TEXT` line of it
// (or of its sibling NAME.expect) names one of them: FILE:LINE:COL appears with TEXT on the same line.
// (kind_check_* files need the real kinds: tests/cli checks them with `loom validate`.)
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/expectations.hpp"

#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace loom::graph;

using loom::test::check_expected_errors;

TEST_CASE("every broken config reports its expected errors at their line and column") {
  fs::path dir = fs::path(LOOM_SOURCE_DIR) / "tests" / "configs" / "broken";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    // kind_check_*: errors a kind's own check finds (kind_spec::check), which the mirror catalog here does
    // not have; tests/cli runs them against the real registry.
    if (entry.path().filename().string().starts_with("kind_check_")) continue;
    ++files;
    std::string path = entry.path().string();
    diagnostics diags;
    auto g = load_graph_file(path, diags);
    if (g) validate(*g, testing::test_catalog{}, diags);
    std::string output = diags.str();
    CAPTURE(path);
    CAPTURE(output);
    CHECK(diags.has_errors());
    check_expected_errors(entry.path(), output);
  }
  CHECK(files >= 20);
}
