// runtime/json.hpp: values to and from JSON (nlohmann::json), for jsonl files, stdout and the CLI.
// bytes become {"$bytes": "<base64>"}; tensors {"$tensor": {"dtype", "shape", "data": [...]}}.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "loom/runtime/value.hpp"

namespace loom {

// Maps keep their field order (ordered_json), so a record reads back as it was written.
nlohmann::ordered_json to_json(const value& v);
value from_json(const nlohmann::ordered_json& j);
value from_json(const nlohmann::json& j);
// One line of compact JSON.
std::string to_json_line(const value& v);
// Strings as their text, everything else as compact JSON.
std::string to_text(const value& v);

}  // namespace loom
