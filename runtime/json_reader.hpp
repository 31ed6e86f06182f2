// runtime/json_reader.hpp: the one reader for JSON that comes from outside loom: jsonl files, MCP messages
// (both ways, both transports), serve's request bodies, a model server's replies and the tool-call arguments
// in them, a worker's spans. Every such text goes through read_json, which checks the limits while it
// parses (nlohmann's SAX interface, before any tree deeper than the limit exists), so no input can make a
// later recursive walk (to a loom::value, a dump) run out of stack. docs/limits.md lists the callers.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "loom/runtime/value.hpp"

namespace loom {

// Nesting deeper than this is refused everywhere JSON or YAML comes in (the YAML loader uses the same).
inline constexpr std::size_t default_max_json_depth = 64;
// The most a caller may raise max_depth to: loom's own walks over a tree recurse, and this keeps them far
// from any thread's stack limit.
inline constexpr std::size_t hard_max_json_depth = 512;

struct json_limits {
  std::size_t max_depth = default_max_json_depth;  // arrays and objects inside each other
  std::size_t max_bytes = std::size_t{16} << 20;   // the whole text
  // An integer above INT64_MAX (up to UINT64_MAX; larger ones are already doubles) becomes a double, the
  // nearest one (as in JavaScript), or is refused. Never a wrapped negative number.
  enum class big_integers { as_double, refuse } big = big_integers::as_double;
};

// Text the reader refused. what() is "SOURCE: REASON (line L, column C)" (line only for text with
// newlines); the parts are kept for callers that answer in a protocol of their own (JSON-RPC, OpenAI).
struct json_error : std::runtime_error {
  enum class kind { syntax, too_deep, too_big, number };
  json_error(kind k, std::string source, std::string reason, std::size_t offset, std::size_t line, std::size_t column);
  kind type;
  std::string source;  // what the caller named: "data/in.jsonl:12", "MCP server `calc`", "request body"
  std::string reason;  // without the source and position
  std::size_t offset;        // the byte where the text went wrong (0-based)
  std::size_t line, column;  // 1-based; both 0 when no one place is at fault (too big, a number)
};

// Parses `text` under `limits`; throws json_error naming `source`. Maps keep their order in ordered_json.
nlohmann::ordered_json read_json(std::string_view text, std::string_view source, const json_limits& limits = {});
nlohmann::json read_json_unordered(std::string_view text, std::string_view source, const json_limits& limits = {});
// read_json, then loom::from_json: a value, with $bytes and $tensor objects turned back into bytes and tensors.
value read_json_value(std::string_view text, std::string_view source, const json_limits& limits = {});

}  // namespace loom
