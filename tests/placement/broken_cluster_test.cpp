// Every file in tests/configs/broken_cluster/ fails to load, and each `# expect: LINE:COL TEXT` line of it
// (or of its sibling NAME.expect) names one of its errors: FILE:LINE:COL, with TEXT in the message or hint.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/expectations.hpp"

#include "loom/runtime/placement/cluster.hpp"

namespace fs = std::filesystem;
using namespace loom;

using loom::test::check_expected_errors;

TEST_CASE("every broken cluster file reports its expected errors at their line and column" * doctest::timeout(30)) {
  fs::path dir = fs::path(LOOM_SOURCE_DIR) / "tests" / "configs" / "broken_cluster";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::string path = entry.path().string();
    graph::diagnostics diags;
    auto c = placement::load_cluster_file(path, diags);
    std::string output = diags.str();
    CAPTURE(path);
    CAPTURE(output);
    CHECK_FALSE(c.has_value());
    CHECK(diags.has_errors());
    check_expected_errors(entry.path(), output);
  }
  CHECK(files >= 10);
}
