// Every file in tests/configs/broken/ loads with errors, and each `# expect: LINE:COL TEXT` line of it
// (or of its sibling NAME.expect) names one of them: FILE:LINE:COL appears with TEXT on the same line.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace loom::graph;

namespace {

struct expectation {
  std::string position;  // "LINE:COL", or empty when the error has no line
  std::string text;
};

// `# expect: 3:5 unknown kind` -> {"3:5", "unknown kind"}; `# expect: the file is empty` -> {"", ...}.
std::vector<expectation> expectations(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<expectation> out;
  std::string line;
  while (std::getline(in, line)) {
    auto at = line.find("# expect: ");
    if (at != 0) {
      if (line.empty() || line[0] != '#') break;
      continue;
    }
    std::string rest = line.substr(10);
    auto space = rest.find(' ');
    std::string first = rest.substr(0, space);
    bool is_position = first.find(':') != std::string::npos &&
                       first.find_first_not_of("0123456789:") == std::string::npos;
    if (is_position) out.push_back({first, rest.substr(space + 1)});
    else out.push_back({"", rest});
  }
  return out;
}

// Whether a diagnostic starts with `prefix` and holds `text` in its message or its hint.
bool has_diagnostic(const std::string& output, const std::string& prefix, const std::string& text) {
  std::istringstream lines(output);
  std::string line, block;
  auto matches = [&] { return block.rfind(prefix, 0) == 0 && block.find(text) != std::string::npos; };
  while (std::getline(lines, line)) {
    if (line.rfind("  hint: ", 0) == 0) {
      block += "\n" + line;
      continue;
    }
    if (matches()) return true;
    block = line;
  }
  return matches();
}

}  // namespace

TEST_CASE("every broken config reports its expected errors at their line and column") {
  fs::path dir = fs::path(LOOM_SOURCE_DIR) / "tests" / "configs" / "broken";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::string path = entry.path().string();
    fs::path expect_file = entry.path();
    expect_file.replace_extension(".expect");
    auto expected = expectations(fs::exists(expect_file) ? expect_file : entry.path());
    diagnostics diags;
    auto g = load_graph_file(path, diags);
    if (g) validate(*g, testing::test_catalog{}, diags);
    std::string output = diags.str();
    CAPTURE(path);
    CAPTURE(output);
    CHECK(diags.has_errors());
    REQUIRE_MESSAGE(!expected.empty(), "no `# expect:` line");
    for (const auto& e : expected) {
      std::string prefix = e.position.empty() ? path + ": error: " : path + ":" + e.position + ": error: ";
      CHECK_MESSAGE(has_diagnostic(output, prefix, e.text), prefix << "... " << e.text);
    }
  }
  CHECK(files >= 20);
}
