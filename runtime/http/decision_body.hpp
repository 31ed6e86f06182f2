// runtime/http/decision_body.hpp: the body of an HTTP request that gives a person's decision
// (docs/durability.md, "People in the loop"), read one way by every door that takes one: the live view's
// `POST /decide` and `loom serve`'s `POST /v1/threads/{thread}/approvals`.
//
//   {"node": "review" | "instance": 1, "id": 0, "verdict": "approve" | "reject" | "edit",
//    "value": <any JSON>, "reason": "..."}
//
// The decision is named by the node's instance name (`review`, `review[1]`) or its instance number; `id` is
// the node's own decision id. `value` is the edited value: with "approve" it makes the decision an edit, with
// "edit" it is required, with "reject" it is refused. `reason` (a string) goes with a rejection. The text
// goes through loom's JSON reader (runtime/json_reader.hpp: nesting and number limits).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace loom::http {

struct decision_body {
  std::string node;                       // empty: named by `instance`
  std::optional<std::uint32_t> instance;  // unset: named by `node`
  std::uint64_t id = 0;
  std::string verdict;                    // "approve", "reject" or "edit" (approve with a value: edit)
  std::optional<std::string> value_json;  // an edit's value, as compact JSON text
  std::string reason;
};

// The decision, or one sentence saying what is wrong with the body (a 400).
std::variant<decision_body, std::string> parse_decision_body(std::string_view text);

// The sentence every door says for a decision given twice (`loom approve`, the live view, `loom serve`):
// "decision ID of `NODE` in WHERE was already given (VERDICT by WHO); the run takes it when it goes on".
std::string already_given(std::uint64_t id, std::string_view node, std::string_view where,
                          std::string_view verdict, std::string_view by);

}  // namespace loom::http
