// runtime/http/decision_body.cpp: one reader for the body of a decision (runtime/http/decision_body.hpp).
#include "loom/runtime/http/decision_body.hpp"

#include <fmt/format.h>

#include <exception>
#include <nlohmann/json.hpp>

#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/node.hpp"

namespace loom::http {

std::variant<decision_body, std::string> parse_decision_body(std::string_view text) {
  static constexpr const char* shape =
      "a decision is {\"node\": NAME (or \"instance\": N), \"id\": N, \"verdict\": "
      "\"approve\"|\"reject\"|\"edit\", "
      "\"value\": V, \"reason\": S}";
  decision_body d;
  try {
    auto j = read_json(text, "the decision");
    if (!j.is_object()) return std::string(shape);
    auto node = j.find("node");
    auto instance = j.find("instance");
    if (node != j.end()) {
      if (!node->is_string() || node->get<std::string>().empty())
        return fmt::format("node: not a node's name; {}", shape);
      d.node = node->get<std::string>();
    }
    if (instance != j.end()) {
      if (!instance->is_number_unsigned() || instance->get<std::uint64_t>() > UINT32_MAX)
        return fmt::format("instance: not an instance number; {}", shape);
      d.instance = instance->get<std::uint32_t>();
    }
    if (d.node.empty() && !d.instance) return fmt::format("name the decision's node (`node`); {}", shape);
    auto id = j.find("id");
    if (id == j.end() || !id->is_number_unsigned())
      return fmt::format("id: missing or not a decision id; {}", shape);
    d.id = id->get<std::uint64_t>();
    auto verdict = j.find("verdict");
    if (verdict == j.end() || !verdict->is_string())
      return fmt::format("verdict: missing or not a string; {}", shape);
    d.verdict = verdict->get<std::string>();
    if (!verdict_of(d.verdict))
      return fmt::format("verdict: `{}` is none of approve, reject, edit", d.verdict);
    if (auto value = j.find("value"); value != j.end()) {
      if (d.verdict == "reject") return std::string("a rejection takes no `value` (give `reason`)");
      d.value_json = value->dump();
      d.verdict = "edit";
    } else if (d.verdict == "edit") {
      return std::string("an edit needs `value`");
    }
    if (auto reason = j.find("reason"); reason != j.end()) {
      if (!reason->is_string()) return std::string("reason: not a string");
      d.reason = reason->get<std::string>();
    }
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return d;
}

std::string already_given(std::uint64_t id, std::string_view node, std::string_view where,
                          std::string_view verdict, std::string_view by) {
  return fmt::format(
      "decision {} of `{}` in {} was already given ({} by {}); the run takes it when it goes on", id, node,
      where, verdict, by);
}

}  // namespace loom::http
