// Every file in tests/configs/broken_cluster/ fails to load, and each `# expect: LINE:COL TEXT` line of it
// (or of its sibling NAME.expect) names one of its errors: FILE:LINE:COL, with TEXT in the message or hint.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/placement/cluster.hpp"

namespace fs = std::filesystem;
using namespace loom;

namespace {

struct expectation {
  std::string position;  // "LINE:COL", or empty for an error about the whole file
  std::string text;
};

std::vector<expectation> expectations(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<expectation> out;
  for (std::string line; std::getline(in, line) && line.rfind("# expect: ", 0) == 0;) {
    std::string rest = line.substr(10);
    auto space = rest.find(' ');
    std::string first = rest.substr(0, space);
    bool position = first.find(':') != std::string::npos && first.find_first_not_of("0123456789:") == std::string::npos;
    out.push_back(position ? expectation{first, rest.substr(space + 1)} : expectation{"", rest});
  }
  return out;
}

// Whether one diagnostic (its line and hint lines) starts with `prefix` and contains `text`.
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

TEST_CASE("every broken cluster file reports its expected errors at their line and column" * doctest::timeout(30)) {
  fs::path dir = fs::path(LOOM_SOURCE_DIR) / "tests" / "configs" / "broken_cluster";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::string path = entry.path().string();
    fs::path sidecar = fs::path(entry.path()).replace_extension(".expect");
    auto expected = expectations(fs::exists(sidecar) ? sidecar : entry.path());
    graph::diagnostics diags;
    auto c = placement::load_cluster_file(path, diags);
    std::string output = diags.str();
    CAPTURE(path);
    CAPTURE(output);
    CHECK_FALSE(c.has_value());
    CHECK(diags.has_errors());
    REQUIRE_MESSAGE(!expected.empty(), "no `# expect:` line");
    for (const auto& e : expected) {
      std::string prefix = e.position.empty() ? path + ": error: " : path + ":" + e.position + ": error: ";
      CHECK_MESSAGE(has_diagnostic(output, prefix, e.text), prefix << "... " << e.text);
    }
  }
  CHECK(files >= 10);
}
