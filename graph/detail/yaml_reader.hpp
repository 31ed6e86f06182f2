// graph/yaml_reader.hpp (private): reading yaml-cpp nodes into loom values with locations, reporting each
// problem (unknown or duplicate keys, wrong types, nesting too deep) to diagnostics instead of throwing.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loom/graph/config.hpp"
#include "loom/graph/diagnostics.hpp"

namespace loom::graph {

// The deepest nesting of lists and maps a graph file may have.
inline constexpr int max_yaml_depth = 64;

// One key of a YAML map, with where the key and its value were written.
struct yaml_entry {
  std::string key;
  YAML::Node value;
  location key_at;
  location value_at;  // the key's location when the value is empty
};

class yaml_reader {
 public:
  yaml_reader(std::shared_ptr<const std::string> file, diagnostics& diags) : file_(std::move(file)), diags_(diags) {}

  diagnostics& diags() { return diags_; }
  const std::shared_ptr<const std::string>& file() const { return file_; }

  // The location of a mark (0-based in yaml-cpp), `offset` columns to the right.
  location at(const YAML::Mark& mark, int offset = 0) const;
  location at(const YAML::Node& node) const { return at(node.Mark()); }

  // A map's entries in order. `allowed` empty: any key. An unknown key is an error with a hint naming the
  // closest allowed key; a duplicate key is an error at the second. Neither is returned. Messages read
  // "unknown NOUN `key`CONTEXT", e.g. noun "field", context " in node `src`".
  std::vector<yaml_entry> entries(const YAML::Node& map, const std::vector<std::string>& allowed,
                                  std::string_view noun, std::string_view context);

  // Any YAML value as a config tree; nullopt (with an error) when it is too deep or too large.
  std::optional<config> to_config(const YAML::Node& node, const location& where, int depth = 0);

  // Typed scalars for the fields of the format; nullopt after reporting an error naming `what`.
  std::optional<std::string> string_of(const yaml_entry& e, std::string_view what);
  std::optional<std::int64_t> int_of(const yaml_entry& e, std::string_view what);
  std::optional<double> number_of(const yaml_entry& e, std::string_view what);
  std::optional<std::uint64_t> size_of(const yaml_entry& e, std::string_view what);
  std::optional<bool> bool_of(const yaml_entry& e, std::string_view what);
  // A name or a list of names.
  std::optional<std::vector<std::pair<std::string, location>>> names_of(const yaml_entry& e, std::string_view what);

  static bool quoted(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "!"; }

  // Lines where the loader quoted a `- [x, y] -> g` edge itself (see quote_list_edges()).
  void set_quoted_lines(std::vector<int> lines) { quoted_lines_ = std::move(lines); }
  // Columns from a scalar's mark to the first character of its text: 1 past a quote the user wrote.
  int text_shift(const YAML::Node& scalar) const;

 private:
  config scalar(const YAML::Node& node) const;
  void type_error(const yaml_entry& e, std::string_view what, std::string_view expected);

  std::shared_ptr<const std::string> file_;
  diagnostics& diags_;
  std::size_t budget_ = 1'000'000;  // values left to read: aliases can multiply a small file's values
  bool reported_budget_ = false;
  bool reported_depth_ = false;
  std::vector<int> quoted_lines_;
};

}  // namespace loom::graph
