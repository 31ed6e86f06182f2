// tests/support/expectations.hpp: what a broken config expects. Its leading comment lines hold
// `# expect: LINE:COL TEXT` (or `# expect: TEXT` for an error about the whole file, with no line), in the
// file itself or in a sibling NAME.expect (for files that cannot hold a comment: empty, binary).
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace loom::test {

struct expectation {
  std::string position;  // "LINE:COL", or empty
  std::string text;
};

inline std::vector<expectation> expectations(const std::filesystem::path& config) {
  auto sidecar = std::filesystem::path(config).replace_extension(".expect");
  std::ifstream in(std::filesystem::exists(sidecar) ? sidecar : config, std::ios::binary);
  std::vector<expectation> out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# expect: ", 0) != 0) {
      if (line.empty() || line[0] != '#') break;
      continue;
    }
    std::string rest = line.substr(10);
    auto space = rest.find(' ');
    std::string first = rest.substr(0, space);
    bool is_position =
        first.find(':') != std::string::npos && first.find_first_not_of("0123456789:") == std::string::npos;
    out.push_back(is_position ? expectation{first, rest.substr(space + 1)} : expectation{"", rest});
  }
  return out;
}

// The prefix a diagnostic of `file` starts with: "FILE:LINE:COL: error: " or "FILE: error: ".
inline std::string error_prefix(const std::string& file, const expectation& e) {
  return e.position.empty() ? file + ": error: " : file + ":" + e.position + ": error: ";
}

// Whether one diagnostic (its line and its hint lines) starts with `prefix` and contains `text`.
inline bool has_diagnostic(const std::string& output, const std::string& prefix, const std::string& text) {
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

// Checks that `output` (the diagnostics printed for `config`) holds every error `config` expects.
inline void check_expected_errors(const std::filesystem::path& config, const std::string& output) {
  auto expected = expectations(config);
  REQUIRE_MESSAGE(!expected.empty(), "no `# expect:` line");
  for (const auto& e : expected) {
    auto prefix = error_prefix(config.string(), e);
    CHECK_MESSAGE(has_diagnostic(output, prefix, e.text), prefix << "... " << e.text);
  }
}

}  // namespace loom::test
