// actors/agents/scripted_backend.cpp: a backend that answers from rules written in the graph, so agent
// graphs run offline and tests are deterministic. Each rule is a map:
//   match: "text"      case-insensitive substring of the last user message; "re:<regex>" an ECMAScript regex
//                      searched in it (case-sensitive); absent: matches anything
//   when:  first | after_tool   only before any tool result of this task / only once tool results are in
//   reply: "text"      the final answer (a template), or
//   call:  {tool: NAME, arguments: {...}}   the model asks for tool NAME (templates in string arguments)
// The first rule that matches answers; none matching is an error naming the node and the message.
// Templates: {{input}} (the user message), {{role}}, {{tool.NAME}} (the last result of tool NAME as compact
// JSON), {{tool.NAME.FIELD.SUB}} (a field of it; numbers with up to 2 decimals), {{...|int}} (rounded).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <stdexcept>

#include "actors/agents/backend.hpp"
#include "runtime/json.hpp"
#include "runtime/json_reader.hpp"

namespace loom::agents {
namespace {

using ojson = nlohmann::ordered_json;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::string excerpt(const std::string& s, std::size_t n = 80) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t from = 0;
  for (auto at = s.find(sep); at != std::string::npos; from = at + 1, at = s.find(sep, from))
    parts.push_back(s.substr(from, at - from));
  parts.push_back(s.substr(from));
  return parts;
}

// What templates can see while answering one turn.
struct scene {
  const std::string& input;
  const std::string& role;
  const std::map<std::string, ojson>& results;  // tool name -> its last result
};

std::string format_number(double d) {
  std::string s = fmt::format("{:.2f}", d);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string format_json(const ojson& j, bool as_int) {
  if (as_int) {
    if (j.is_number()) return std::to_string(std::llround(j.get<double>()));
    throw std::runtime_error(fmt::format("|int needs a number, found {}", excerpt(j.dump())));
  }
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return j.dump();
  if (j.is_number()) return format_number(j.get<double>());
  return j.dump();
}

// Checks one template expression (the text between {{ and }}) for shape; throws naming what is wrong.
void check_expression(const std::string& expr) {
  auto parts = split(expr, '|');
  if (parts.size() > 2 || (parts.size() == 2 && trim(parts[1]) != "int"))
    throw std::invalid_argument(fmt::format("{{{{{}}}}}: the only filter is |int", expr));
  auto head = trim(parts[0]);
  if (head == "input" || head == "role") return;
  if (head.rfind("tool.", 0) == 0 && head.size() > 5 && head.find("..") == std::string::npos && head.back() != '.')
    return;
  throw std::invalid_argument(
      fmt::format("{{{{{}}}}}: expected {{{{input}}}}, {{{{role}}}} or {{{{tool.NAME[.FIELD...]}}}}", expr));
}

std::string eval(const std::string& expr, const scene& s) {
  auto parts = split(expr, '|');
  bool as_int = parts.size() == 2;
  auto head = trim(parts[0]);
  if (head == "input") return s.input;
  if (head == "role") return s.role;
  auto path = split(head.substr(5), '.');
  auto it = s.results.find(path[0]);
  if (it == s.results.end())
    throw std::runtime_error(fmt::format("{{{{{}}}}}: no result from tool `{}` yet", head, path[0]));
  const ojson* at = &it->second;
  for (std::size_t i = 1; i < path.size(); ++i) {
    const ojson* next = nullptr;
    if (at->is_object() && at->contains(path[i])) next = &(*at)[path[i]];
    if (at->is_array() && !path[i].empty() && std::all_of(path[i].begin(), path[i].end(), [](unsigned char c) { return std::isdigit(c) != 0; }) &&
        std::stoul(path[i]) < at->size())
      next = &(*at)[std::stoul(path[i])];
    if (next == nullptr)
      throw std::runtime_error(fmt::format("{{{{{}}}}}: no field `{}` in the result of tool `{}`: {}", head, path[i],
                                           path[0], excerpt(it->second.dump())));
    at = next;
  }
  return format_json(*at, as_int);
}

// Calls `on_expr` for each {{expression}} and returns the text with each replaced by what it returned.
template <class F>
std::string expand(const std::string& text, F&& on_expr) {
  std::string out;
  std::size_t from = 0;
  for (auto open = text.find("{{"); open != std::string::npos; open = text.find("{{", from)) {
    auto close = text.find("}}", open + 2);
    if (close == std::string::npos) throw std::invalid_argument("`{{` without a closing `}}`");
    out += text.substr(from, open - from);
    out += on_expr(text.substr(open + 2, close - open - 2));
    from = close + 2;
  }
  return out + text.substr(from);
}

void check_template(const std::string& text) {
  expand(text, [](const std::string& e) { check_expression(e); return std::string(); });
}

ojson render_arguments(const value& v, const scene& s) {
  if (v.is_string()) return expand(v.as_string(), [&](const std::string& e) { return eval(e, s); });
  if (v.is_list()) {
    auto out = ojson::array();
    for (const auto& e : v.as_list()) out.push_back(render_arguments(e, s));
    return out;
  }
  if (v.is_map()) {
    auto out = ojson::object();
    for (const auto& [k, e] : v.as_map()) out[k] = render_arguments(e, s);
    return out;
  }
  return to_json(v);
}

void check_arguments(const value& v) {
  if (v.is_string()) check_template(v.as_string());
  if (v.is_list())
    for (const auto& e : v.as_list()) check_arguments(e);
  if (v.is_map())
    for (const auto& [k, e] : v.as_map()) check_arguments(e);
}

struct rule {
  enum class when { any, first, after_tool };
  std::string match;  // lower-cased substring; empty matches anything
  std::optional<std::regex> re;
  when on = when::any;
  std::string reply;  // when tool is empty
  std::string tool;
  value arguments = value{value_map{}};
};

rule parse_rule(const value& r, std::size_t i) {
  auto fail = [&](const std::string& field, const std::string& what) {
    return std::invalid_argument(fmt::format("rules[{}]{}: {}", i, field.empty() ? "" : "." + field, what));
  };
  if (!r.is_map()) throw fail("", fmt::format("expected a map with match/when/reply/call, found {}", r.type_name()));
  rule out;
  for (const auto& [k, v] : r.as_map())
    if (k != "match" && k != "when" && k != "reply" && k != "call")
      throw fail(k, "unknown field; a rule has match, when, and reply or call");
  if (const value* m = r.find("match")) {
    if (!m->is_string()) throw fail("match", fmt::format("expected a string, found {}", m->type_name()));
    const auto& text = m->as_string();
    if (text.rfind("re:", 0) == 0) {
      try {
        out.re.emplace(text.substr(3), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw fail("match", fmt::format("bad regex `{}`: {}", text.substr(3), e.what()));
      }
    } else {
      out.match = lower(text);
    }
  }
  if (const value* w = r.find("when")) {
    if (!w->is_string() || (w->as_string() != "first" && w->as_string() != "after_tool"))
      throw fail("when", fmt::format("expected `first` or `after_tool`, found {}", to_json_line(*w)));
    out.on = w->as_string() == "first" ? rule::when::first : rule::when::after_tool;
  }
  const value* reply = r.find("reply");
  const value* call = r.find("call");
  if ((reply == nullptr) == (call == nullptr)) throw fail("", "needs exactly one of `reply` and `call`");
  try {
    if (reply != nullptr) {
      if (!reply->is_string()) throw fail("reply", fmt::format("expected a string, found {}", reply->type_name()));
      check_template(reply->as_string());
      out.reply = reply->as_string();
      return out;
    }
    const value* tool = call->find("tool");
    if (!call->is_map() || tool == nullptr || !tool->is_string() || tool->as_string().empty())
      throw fail("call", "expected a map {tool: NAME, arguments: {...}}");
    for (const auto& [k, v] : call->as_map())
      if (k != "tool" && k != "arguments") throw fail("call." + k, "unknown field; a call has tool and arguments");
    out.tool = tool->as_string();
    if (const value* args = call->find("arguments")) {
      if (!args->is_map()) throw fail("call.arguments", fmt::format("expected a map, found {}", args->type_name()));
      check_arguments(*args);
      out.arguments = *args;
    }
  } catch (const std::invalid_argument& e) {
    if (std::string_view(e.what()).rfind("rules[", 0) == 0) throw;
    throw fail(reply != nullptr ? "reply" : "call.arguments", e.what());
  }
  return out;
}

class scripted_backend final : public backend {
 public:
  scripted_backend(const value& rules, std::string node, std::string role)
      : node_(std::move(node)), role_(std::move(role)) {
    if (!rules.is_list())
      throw std::invalid_argument(fmt::format("rules: expected a list, found {}", rules.type_name()));
    for (std::size_t i = 0; i < rules.as_list().size(); ++i) rules_.push_back(parse_rule(rules.as_list()[i], i));
  }

  chat_reply complete(const std::vector<chat_message>& messages, const ojson& tools) override {
    std::size_t last_user = messages.size();
    for (std::size_t i = 0; i < messages.size(); ++i)
      if (messages[i].role == "user") last_user = i;
    static const std::string none;
    const std::string& input = last_user < messages.size() ? messages[last_user].content : none;
    auto results = tool_results(messages, last_user);
    bool after_tool = !results.empty();
    scene s{input, role_, results};
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      const rule& r = rules_[i];
      if ((r.on == rule::when::first && after_tool) || (r.on == rule::when::after_tool && !after_tool)) continue;
      if (r.re ? !std::regex_search(input, *r.re) : lower(input).find(r.match) == std::string::npos) continue;
      try {
        chat_reply out;
        if (r.tool.empty()) {
          out.text = expand(r.reply, [&](const std::string& e) { return eval(e, s); });
        } else {
          tool_call c{fmt::format("call_{}", ++calls_), r.tool, render_arguments(r.arguments, s), {}, {}};
          c.raw_arguments = c.arguments.dump();
          out.tool_calls.push_back(std::move(c));
        }
        return out;
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("agent.llm `{}`: scripted rules[{}]: {}", node_, i, e.what()));
      }
    }
    throw std::runtime_error(fmt::format("agent.llm `{}`: no scripted rule matched the message \"{}\"{}", node_,
                                         excerpt(input), after_tool ? " (after tool results)" : ""));
  }

 private:
  // The results of tool calls made since the user message at `from`, by tool name (the last one wins).
  static std::map<std::string, ojson> tool_results(const std::vector<chat_message>& messages, std::size_t from) {
    std::map<std::string, std::string> names;  // call id -> tool name
    std::map<std::string, ojson> results;
    for (std::size_t i = from; i < messages.size(); ++i) {
      for (const auto& c : messages[i].tool_calls) names[c.id] = c.name;
      if (messages[i].role != "tool") continue;
      auto name = names.find(messages[i].tool_call_id);
      if (name == names.end()) continue;
      try {  // a tool's result as JSON, through the shared reader; anything it refuses stays a string
        results[name->second] = read_json(messages[i].content, "a tool result");
      } catch (const json_error&) {
        results[name->second] = ojson(messages[i].content);
      }
    }
    return results;
  }

  std::string node_, role_;
  std::vector<rule> rules_;
  std::uint64_t calls_ = 0;
};

}  // namespace

std::unique_ptr<backend> make_scripted_backend(const value& rules, std::string node, std::string role) {
  return std::make_unique<scripted_backend>(rules, std::move(node), std::move(role));
}

}  // namespace loom::agents
