// actors/agents/scripted_backend.cpp: a backend that answers from rules written in the graph, so agent
// graphs run offline and tests are deterministic. Each rule is a map:
//   match: "text"      case-insensitive substring of the last user message; "re:<regex>" an ECMAScript regex
//                      searched in it (case-sensitive); absent: matches anything
//   when:  first | after_tool   only before any tool result of this task / only once tool results are in
//   reply: "text"      the final answer (a template), or
//   call:  {tool: NAME, arguments: {...}}   the model asks for tool NAME (templates in string arguments)
// The first rule that matches answers; none matching is an error naming the node and the message.
// Templates: {{input}} (the user message), {{input.FIELD.SUB}}, {{input.items[0]}} (a field of the agent's
// input value; a string input that is JSON is read as such), {{role}}, {{tool.NAME}} (the last result of
// tool NAME as compact JSON), {{tool.NAME.FIELD[0]}} (a field of it), {{...|int}} (rounded). Numbers keep
// full precision: integers exactly, floats as the shortest text that reads back as the same double.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <regex>
#include <stdexcept>

#include "loom/actors/agents/backend.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"

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
  const ojson& input_value;                     // the agent's input, for {{input.PATH}}
};

// The agent's input as JSON for {{input.PATH}}: a string input that is JSON is read as such.
ojson input_json(const value& v) {
  ojson j = to_json(v);
  if (v.is_string()) try {  // a string that is JSON: its fields, through the shared reader
      j = read_json(v.as_string(), "the agent's input");
    } catch (const json_error&) {
    }
  return j;
}

// The shortest text that reads back as `d` (0.3333333333333333, 1234567.891), never grouped; a whole
// double without a fraction (3, not 3.0); very large or small ones with an exponent (1e+20).
std::string format_number(double d) {
  std::string s = fmt::format("{}", d);
  if (s.ends_with(".0")) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}

// One step of a path: `.name` (a field, or an index when all digits, on a list) or `[N]` (an index).
struct step {
  std::string name;
  bool bracket = false;
};

bool all_digits(const std::string& t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// The steps of `path` (what follows `input` or `tool.NAME`: ".a.b[0]"); throws for a malformed one.
std::vector<step> parse_path(const std::string& path, const std::string& expr) {
  std::vector<step> out;
  std::size_t i = 0;
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(fmt::format("{{{{{}}}}}: {} at `{}`", expr, why, path.substr(i)));
  };
  while (i < path.size()) {
    if (path[i] == '.') {
      auto end = path.find_first_of(".[", i + 1);
      std::string name = path.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
      if (name.empty()) throw bad("an empty field name");
      out.push_back({name, false});
      i = end == std::string::npos ? path.size() : end;
    } else if (path[i] == '[') {
      auto end = path.find(']', i);
      if (end == std::string::npos) throw bad("`[` without `]`");
      std::string index = path.substr(i + 1, end - i - 1);
      if (!all_digits(index) || index.size() > 9) throw bad("an index must be a number, e.g. [0]");
      out.push_back({index, true});
      i = end + 1;
    } else {
      throw bad("expected `.FIELD` or `[N]`");
    }
  }
  return out;
}

// Follows `steps` from `at`; nullptr where a step finds nothing (`failed` says which step).
const ojson* follow(const ojson* at, const std::vector<step>& steps, std::size_t& failed) {
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const step& st = steps[k];
    const ojson* next = nullptr;
    if (!st.bracket && at->is_object() && at->contains(st.name)) next = &(*at)[st.name];
    if (at->is_array() && all_digits(st.name) && st.name.size() <= 9 && std::stoul(st.name) < at->size())
      next = &(*at)[std::stoul(st.name)];
    if (next == nullptr) {
      failed = k;
      return nullptr;
    }
    at = next;
  }
  return at;
}

std::string show_step(const step& st) { return st.bracket ? "[" + st.name + "]" : st.name; }

std::string format_json(const ojson& j, bool as_int) {
  if (as_int) {
    if (j.is_number()) return std::to_string(std::llround(j.get<double>()));
    throw std::runtime_error(fmt::format("|int needs a number, found {}", excerpt(j.dump())));
  }
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return j.dump();
  if (j.is_number()) return format_number(j.get<double>());
  return j.dump();  // nlohmann writes doubles with full precision too
}

// Checks one template expression (the text between {{ and }}) for shape; throws naming what is wrong.
void check_expression(const std::string& expr) {
  auto parts = split(expr, '|');
  if (parts.size() > 2 || (parts.size() == 2 && trim(parts[1]) != "int"))
    throw std::invalid_argument(fmt::format("{{{{{}}}}}: the only filter is |int", expr));
  auto head = trim(parts[0]);
  if (head == "input" || head == "role") return;
  if (head.starts_with("input.") || head.starts_with("input[")) {
    parse_path(head.substr(5), expr);
    return;
  }
  if (head.rfind("tool.", 0) == 0 && head.size() > 5) {
    auto name_end = head.find_first_of(".[", 5);
    if (name_end != 5) {
      if (name_end != std::string::npos) parse_path(head.substr(name_end), expr);
      return;
    }
  }
  throw std::invalid_argument(fmt::format(
      "{{{{{}}}}}: expected {{{{input}}}}, {{{{input.FIELD[N]...}}}}, {{{{role}}}} or {{{{tool.NAME[.FIELD...]}}}}",
      expr));
}

std::string eval(const std::string& expr, const scene& s) {
  auto parts = split(expr, '|');
  bool as_int = parts.size() == 2;
  auto head = trim(parts[0]);
  if (head == "input") return s.input;
  if (head == "role") return s.role;
  std::size_t failed = 0;
  if (head == "input" || head.starts_with("input.") || head.starts_with("input[")) {
    auto steps = parse_path(head.substr(5), expr);
    const ojson* at = follow(&s.input_value, steps, failed);
    if (at == nullptr)
      throw std::runtime_error(fmt::format("{{{{{}}}}}: no field `{}` in the input: {}", head, show_step(steps[failed]),
                                           excerpt(s.input_value.dump())));
    return format_json(*at, as_int);
  }
  auto name_end = head.find_first_of(".[", 5);
  std::string name = head.substr(5, name_end == std::string::npos ? std::string::npos : name_end - 5);
  auto it = s.results.find(name);
  if (it == s.results.end())
    throw std::runtime_error(fmt::format("{{{{{}}}}}: no result from tool `{}` yet", head, name));
  auto steps = name_end == std::string::npos ? std::vector<step>{} : parse_path(head.substr(name_end), expr);
  const ojson* at = follow(&it->second, steps, failed);
  if (at == nullptr)
    throw std::runtime_error(fmt::format("{{{{{}}}}}: no field `{}` in the result of tool `{}`: {}", head,
                                         show_step(steps[failed]), name, excerpt(it->second.dump())));
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

// The input paths a template reads ({{input.a.b}} -> the steps .a.b), with their expressions.
std::vector<std::pair<std::string, std::vector<step>>> input_paths(const std::string& text) {
  std::vector<std::pair<std::string, std::vector<step>>> out;
  expand(text, [&](const std::string& e) {
    auto head = trim(split(e, '|')[0]);
    if (head.starts_with("input.") || head.starts_with("input[")) out.emplace_back(e, parse_path(head.substr(5), e));
    return std::string();
  });
  return out;
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

// A rule that cannot be used. what() is the text the runtime shows ("rules[2].call.arguments: ..."); `path`
// leads from the rules list to the value at fault ({"2", "call", "arguments", "query"}), for validation.
struct bad_rule : std::invalid_argument {
  bad_rule(std::vector<std::string> at, const std::string& what)
      : std::invalid_argument(what), path(std::move(at)) {}
  std::vector<std::string> path;
};

// Calls `on_string(text, at)` for each string in a call's arguments; `at` is the path to it.
template <class F>
void each_argument(const value& v, std::vector<std::string>& at, F&& on_string) {
  if (v.is_string()) on_string(v.as_string(), at);
  if (v.is_list())
    for (std::size_t k = 0; k < v.as_list().size(); ++k) {
      at.push_back(std::to_string(k));
      each_argument(v.as_list()[k], at, on_string);
      at.pop_back();
    }
  if (v.is_map())
    for (const auto& [k, e] : v.as_map()) {
      at.push_back(k);
      each_argument(e, at, on_string);
      at.pop_back();
    }
}

// Checks the templates in rule `i`'s call arguments; throws bad_rule at the string at fault.
void check_arguments(const value& args, std::size_t i) {
  std::vector<std::string> at{std::to_string(i), "call", "arguments"};
  each_argument(args, at, [&](const std::string& text, const std::vector<std::string>& path) {
    try {
      check_template(text);
    } catch (const std::invalid_argument& e) {
      throw bad_rule(path, fmt::format("rules[{}].call.arguments: {}", i, e.what()));
    }
  });
}

// The tool names a template's {{tool.NAME...}} expressions read (the text is well formed).
std::vector<std::string> tools_read(const std::string& text) {
  std::vector<std::string> names;
  expand(text, [&](const std::string& e) {
    auto head = trim(split(e, '|')[0]);
    if (head.rfind("tool.", 0) == 0) {
      auto end = head.find_first_of(".[", 5);
      names.push_back(head.substr(5, end == std::string::npos ? std::string::npos : end - 5));
    }
    return std::string();
  });
  return names;
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

constexpr std::size_t max_regex = 4096;

rule parse_rule(const value& r, std::size_t i) {
  auto fail = [&](const std::string& field, const std::string& what) {
    std::vector<std::string> at{std::to_string(i)};
    if (!field.empty())
      for (auto& part : split(field, '.')) at.push_back(std::move(part));
    return bad_rule(std::move(at), fmt::format("rules[{}]{}: {}", i, field.empty() ? "" : "." + field, what));
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
      // std::regex compiles by recursion, a level per character: a pattern this long is a mistake anyway.
      if (text.size() - 3 > max_regex)
        throw fail("match", fmt::format("a regex of {} characters; at most {}", text.size() - 3, max_regex));
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
      check_arguments(*args, i);
      out.arguments = *args;
    }
  } catch (const bad_rule&) {
    throw;
  } catch (const std::invalid_argument& e) {
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

  void set_input(const value& v) override { input_value_ = input_json(v); }

  chat_reply complete(const std::vector<chat_message>& messages, const ojson& tools) override {
    std::size_t last_user = messages.size();
    for (std::size_t i = 0; i < messages.size(); ++i)
      if (messages[i].role == "user") last_user = i;
    static const std::string none;
    const std::string& input = last_user < messages.size() ? messages[last_user].content : none;
    auto results = tool_results(messages, last_user);
    bool after_tool = !results.empty();
    scene s{input, role_, results, input_value_};
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
  ojson input_value_;
  std::vector<rule> rules_;
  std::uint64_t calls_ = 0;
};

}  // namespace

std::vector<rules_problem> check_scripted_rules(const value& rules,
                                                const std::function<bool(const std::string&)>& is_tool,
                                                const std::vector<value>& inputs) {
  std::vector<rules_problem> out;
  // Each {{input.PATH}} of `text` against each input the node is known to get.
  auto check_inputs = [&](const std::string& text, std::vector<std::string> at, std::size_t i,
                          const std::string& field) {
    for (const auto& [expr, steps] : input_paths(text))
      for (const auto& in : inputs) {
        ojson j = input_json(in);
        std::size_t failed = 0;
        if (follow(&j, steps, failed) != nullptr) continue;
        out.push_back({at, fmt::format("rules[{}].{}: {{{{{}}}}}: no field `{}` in the input this node gets: {}", i,
                                       field, expr, show_step(steps[failed]), excerpt(j.dump())),
                       false});
        break;
      }
  };
  if (!rules.is_list()) return {{{}, fmt::format("rules: expected a list, found {}", rules.type_name()), false}};
  for (std::size_t i = 0; i < rules.as_list().size(); ++i) {
    rule r;
    try {
      r = parse_rule(rules.as_list()[i], i);
    } catch (const bad_rule& e) {
      out.push_back({e.path, e.what(), false});
      continue;
    }
    // A tool the node cannot call has no result to read and cannot be asked for.
    auto unknown = [&](const std::string& name, std::vector<std::string> at, const std::string& field) {
      out.push_back({std::move(at), fmt::format("rules[{}].{}: `{}` is not a tool of this node (its `tools`), so "
                                                "it has no result to read",
                                                i, field, name),
                     true});
    };
    std::string index = std::to_string(i);
    if (r.tool.empty()) {
      for (const auto& name : tools_read(r.reply))
        if (!is_tool(name)) unknown(name, {index, "reply"}, "reply");
      check_inputs(r.reply, {index, "reply"}, i, "reply");
      continue;
    }
    if (!is_tool(r.tool))
      out.push_back({{index, "call", "tool"},
                     fmt::format("rules[{}].call.tool: `{}` is not a tool of this node (its `tools`)", i, r.tool),
                     true});
    std::vector<std::string> at{index, "call", "arguments"};
    each_argument(r.arguments, at, [&](const std::string& text, const std::vector<std::string>& path) {
      for (const auto& name : tools_read(text))
        if (!is_tool(name)) unknown(name, path, "call.arguments");
      check_inputs(text, path, i, "call.arguments");
    });
  }
  return out;
}

namespace {

// A prompt template reads the input and the role, never a tool (no tool has answered before the task).
void check_prompt_expression(const std::string& e) {
  check_expression(e);
  if (trim(split(e, '|')[0]).starts_with("tool."))
    throw std::invalid_argument(fmt::format("{{{{{}}}}}: a prompt is filled before any tool is called; it reads "
                                            "{{{{input...}}}} and {{{{role}}}}",
                                            e));
}

}  // namespace

std::string render_prompt(const std::string& text, const value& input, const std::string& message,
                          const std::string& role) {
  static const std::map<std::string, ojson> no_results;
  ojson j = input_json(input);
  scene s{message, role, no_results, j};
  return expand(text, [&](const std::string& e) { return eval(e, s); });
}

std::string check_prompt(const std::string& text, const std::vector<value>& inputs) {
  try {
    expand(text, [](const std::string& e) { check_prompt_expression(e); return std::string(); });
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  for (const auto& [expr, steps] : input_paths(text))
    for (const auto& in : inputs) {
      ojson j = input_json(in);
      std::size_t failed = 0;
      if (follow(&j, steps, failed) == nullptr)
        return fmt::format("{{{{{}}}}}: no field `{}` in the input this node gets: {}", expr, show_step(steps[failed]),
                           excerpt(j.dump()));
    }
  return {};
}

std::unique_ptr<backend> make_scripted_backend(const value& rules, std::string node, std::string role) {
  return std::make_unique<scripted_backend>(rules, std::move(node), std::move(role));
}

}  // namespace loom::agents
