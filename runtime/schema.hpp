// runtime/schema.hpp: JSON schemas generated from what a kind declares: a tool's call arguments become the
// OpenAI-style `tools` entry an agent offers its model, and a request is checked against them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "loom/graph/kind_spec.hpp"
#include "loom/runtime/value.hpp"

namespace loom {

// {"type": "object", "properties": {...}, "required": [...]} for these params.
nlohmann::ordered_json params_schema(const std::vector<graph::param_spec>& params);

// {"type": "function", "function": {"name": NAME, "description": ..., "parameters": ...}} for a tool node.
nlohmann::ordered_json tool_schema(const std::string& name, const graph::call_spec& call);

// Checks a call request against the tool's arguments and fills defaults. Throws std::invalid_argument with
// a message for the model ("argument `x`: expected a number, found string") on a mismatch.
value check_call_request(const graph::call_spec& call, const value& request);

}  // namespace loom
