// agent.llm: an LLM agent. Each input is a task; the agent asks its model (an OpenAI-compatible server, or
// scripted rules), lets it call the node's tools (the graph's `tools: [...]`) for up to max_turns rounds,
// and emits the final answer. A planner's answer that lists tasks is also emitted as one value per task.
//   inputs:  in: a string (the task); a map (its `task`, else `text`, else `prompt` field is the task, and
//            the other fields go to the model as context, in JSON); or a list (e.g. from flow.gather: each
//            element becomes a section "## <agent or role>\n<text>" of one message: a writer's team's work)
//   outputs: out: {agent: node name, role, task: the user message, text: the final answer, tool_calls: count}
//            tasks: when the answer is JSON with a `tasks` array (or is an array), one {role, task} per item
//            (a string item gets role ""); only when connected
//   params:  backend (string, http|scripted, "scripted"), base_url (string, optional: the server; without it
//            and base_urls, "http://127.0.0.1:8000/v1"), base_urls (list of strings, optional, not with base_url:
//            replicas of one model, each request to the one the in-process router chooses, docs/route.md),
//            route_policy (string, prefix|least-loaded|round-robin, "prefix"),
//            model (string, "default"), system (string, "": a template, {{input.FIELD}} and the like),
//            role (string, "": the node name), temperature (floating, 0.2, 0..2), max_tokens (integer, 512, >= 1), timeout_ms (integer, 60000,
//            >= 1), retries (integer, 2, >= 0), backoff_ms (integer, 200, >= 0), api_key_env (string, "":
//            the NAME of the variable that holds the key), stream (boolean, false), max_turns (integer, 6,
//            >= 1), tool_timeout_ms (integer, 30000, >= 1), rules (list, []: the scripted backend's rules),
//            memory (integer, 0, 0..10000: the last N exchanges of the conversation, each the user message and
//            the final answer, sent to the model before the new task; N > 0 makes the node stateful: it
//            checkpoints them after each task, and `loom serve --state` keeps them per thread),
//            approve_tools (list of tool names, []: calls to these wait for a person's decision, `loom approve`;
//            the paused task is the node's checkpoint, so it survives restarts and the process; needs --state)
//   environment: LOOM_LLM_BASE_URL overrides base_url (and base_urls) and makes every agent.llm use backend http;
//            LOOM_LLM_MODEL overrides model.
// Blocking: HTTP calls block, so each instance gets its own thread.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>

#include "loom/actors/agents/agent_loop.hpp"
#include "loom/actors/agents/backend.hpp"
#include "loom/actors/kinds.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"

namespace loom::actors {
namespace {

using ojson = nlohmann::ordered_json;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// The http backend is used when the node says so or LOOM_LLM_BASE_URL is set.
bool uses_http(const std::string& backend) {
  const char* url_override = std::getenv("LOOM_LLM_BASE_URL");
  return backend == "http" || (url_override != nullptr && *url_override != '\0');
}

constexpr const char* default_base_url = "http://127.0.0.1:8000/v1";

// What is wrong with base_url and base_urls together (empty: nothing): one of them, not both; base_urls a
// non-empty list of strings. Validation reports it where it is written; the node refuses it when built.
std::string check_urls(const value* base_url, const value* base_urls) {
  if (base_urls == nullptr) return {};
  if (base_url != nullptr)
    return "base_url and base_urls are both set: give base_url (one server) or base_urls (its replicas), not both";
  if (!base_urls->is_list() || base_urls->as_list().empty())
    return "base_urls: expected a non-empty list of URLs (http://host[:port][/path])";
  for (std::size_t i = 0; i < base_urls->as_list().size(); ++i)
    if (!base_urls->as_list()[i].is_string()) return fmt::format("base_urls[{}]: expected a URL (a string)", i);
  return {};
}

std::unique_ptr<agents::backend> make_backend(const node_init& init, const std::string& role) {
  const auto& p = init.params;
  bool http = uses_http(p.get_string("backend"));
  try {
    if (!http) return agents::make_scripted_backend(p.get("rules"), init.name, role);
    const value* base_urls = p.has("base_urls") ? &p.get("base_urls") : nullptr;
    if (auto bad = check_urls(p.has("base_url") ? &p.get("base_url") : nullptr, base_urls); !bad.empty())
      throw std::invalid_argument(bad);
    agents::http_options o;
    o.base_url = env_or("LOOM_LLM_BASE_URL", p.has("base_url") ? p.get_string("base_url") : default_base_url);
    // LOOM_LLM_BASE_URL names one server: it replaces the replicas too.
    if (base_urls != nullptr && env_or("LOOM_LLM_BASE_URL", "").empty())
      for (const auto& u : base_urls->as_list()) o.base_urls.push_back(u.as_string());
    o.route_policy = p.get_string("route_policy");
    o.model = env_or("LOOM_LLM_MODEL", p.get_string("model"));
    o.temperature = p.get_float("temperature");
    o.max_tokens = p.get_int("max_tokens");
    o.timeout = std::chrono::milliseconds(p.get_int("timeout_ms"));
    o.retries = static_cast<int>(p.get_int("retries"));
    o.backoff = std::chrono::milliseconds(p.get_int("backoff_ms"));
    o.api_key_env = p.get_string("api_key_env");
    o.stream = p.get_bool("stream");
    o.node = init.name;
    return agents::make_http_backend(o);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("agent.llm `{}`: {}", init.name, e.what()));
  }
}

// What the model is asked: the user message, and context (JSON) when the input carried more than the task.
struct prompt {
  std::string task;
  std::string context;
};

std::string section(const value& item, std::size_t i) {
  if (!item.is_map()) return fmt::format("## part {}\n{}", i + 1, to_text(item));
  const value* who = item.find("agent");
  if (who == nullptr || !who->is_string() || who->as_string().empty()) who = item.find("role");
  std::string head = who != nullptr && who->is_string() && !who->as_string().empty() ? who->as_string()
                                                                                      : fmt::format("part {}", i + 1);
  const value* text = item.find("text");
  return fmt::format("## {}\n{}", head, text != nullptr ? to_text(*text) : to_json_line(item));
}

prompt read_input(const value& v) {
  if (v.is_list()) {
    std::string joined;
    for (std::size_t i = 0; i < v.as_list().size(); ++i)
      joined += (i == 0 ? "" : "\n\n") + section(v.as_list()[i], i);
    return {joined, {}};
  }
  if (!v.is_map()) return {to_text(v), {}};
  prompt p;
  for (const char* field : {"task", "text", "prompt"})
    if (const value* f = v.find(field)) {
      p.task = to_text(*f);
      break;
    }
  bool more = false;
  for (const auto& [k, f] : v.as_map()) more = more || (k != "task" && k != "text" && k != "prompt" && k != "role");
  if (p.task.empty() || more) p.context = to_json(v).dump(2);
  return p;
}

// The planner's tasks in `text`: JSON (maybe in a ```json fence, maybe with prose around it) holding an
// array of {role, task} or strings, itself or as its `tasks` field. Anything else: no tasks.
std::vector<value> planned_tasks(const std::string& text) {
  // The model's text goes through the shared reader (its depth and size limits): what it refuses is no plan.
  auto parse = [](std::string_view s) -> std::optional<ojson> {
    try {
      return read_json(s, "the planner's reply");
    } catch (const json_error&) {
      return std::nullopt;
    }
  };
  auto parsed = parse(text);
  if (!parsed) {
    auto open = text.find_first_of("{[");
    auto close = text.find_last_of("}]");
    if (open == std::string::npos || close == std::string::npos || close < open) return {};
    parsed = parse(std::string_view(text).substr(open, close - open + 1));
    if (!parsed) return {};
  }
  const ojson& j = *parsed;
  const ojson* items = j.is_array() ? &j : j.is_object() && j.contains("tasks") ? &j["tasks"] : nullptr;
  if (items == nullptr || !items->is_array()) return {};
  std::vector<value> tasks;
  for (const auto& t : *items) {
    if (t.is_string()) tasks.emplace_back(value_map{{"role", ""}, {"task", t.get<std::string>()}});
    if (!t.is_object() || !t.contains("task")) continue;
    auto text_of = [](const ojson& f) { return f.is_string() ? f.get<std::string>() : f.dump(); };
    tasks.emplace_back(value_map{{"role", t.contains("role") ? text_of(t["role"]) : ""}, {"task", text_of(t["task"])}});
  }
  return tasks;
}

// The agent's memory in its checkpoint (its `memory` field): [{user, assistant}, ...], oldest first. Anything
// else (another kind's, another loom's) is a clear error, not a silent reset.
std::vector<std::pair<std::string, std::string>> read_memory(const value& v, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  if (v.is_null()) return out;
  auto bad = [&] {
    return std::invalid_argument(
        fmt::format("agent.llm `{}`: its restored memory is not a list of {{user, assistant}} texts", name));
  };
  if (!v.is_list()) throw bad();
  for (const auto& e : v.as_list()) {
    const value* u = e.is_map() ? e.find("user") : nullptr;
    const value* a = e.is_map() ? e.find("assistant") : nullptr;
    if (u == nullptr || a == nullptr || !u->is_string() || !a->is_string()) throw bad();
    out.emplace_back(u->as_string(), a->as_string());
  }
  return out;
}

class llm_agent final : public node {
 public:
  explicit llm_agent(const node_init& init)
      : name_(init.name),
        role_(init.params.get_string("role").empty() ? init.name : init.params.get_string("role")),
        system_(init.params.get_string("system")),
        backend_(make_backend(init, role_)),
        loop_(*backend_, agents::loop_options{static_cast<int>(init.params.get_int("max_turns")),
                                              std::chrono::milliseconds(init.params.get_int("tool_timeout_ms")),
                                              approve_tools_of(init.params)}),
        memory_size_(static_cast<std::size_t>(init.params.has("memory") ? init.params.get_int("memory") : 0)),
        approvals_(!approve_tools_of(init.params).empty()) {
    if (auto bad = agents::check_prompt(system_); !bad.empty())
      throw std::invalid_argument(fmt::format("agent.llm `{}`: system: {}", name_, bad));
    // The checkpoint is a map: `memory` (memory: N), and `task` and `paused` while a task waits for approvals.
    if (!init.restored.is_null() && !init.restored.is_map())
      throw std::invalid_argument(fmt::format("agent.llm `{}`: its saved state is not a map", name_));
    if (memory_size_ > 0 && init.restored.is_map())
      if (const value* m = init.restored.find("memory")) memory_ = read_memory(*m, name_);
    // A paused task: kept whenever the loop pauses, with the memory.
    loop_.on_pause([this](context& c) { c.checkpoint(saved_state(true)); });
    if (approvals_ && init.restored.is_map() && (init.restored.find("task") || init.restored.find("paused"))) {
      const value* task = init.restored.find("task");
      const value* paused = init.restored.find("paused");
      if (!task || !task->is_string() || !paused)
        throw std::invalid_argument(fmt::format("agent.llm `{}`: its saved state is not {{task, paused}}", name_));
      task_ = task->as_string();
      try {
        loop_.restore(*paused, [this, t = task_](context& c, agents::loop_result r) { emit_result(c, t, std::move(r)); });
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fmt::format("agent.llm `{}`: {}", name_, e.what()));
      }
    }
  }

  // Approvals: one paused task at a time (its decisions pending, the node takes no other input).
  std::size_t max_pending_decisions() const override {
    return approvals_ ? 1 : node::max_pending_decisions();
  }
  void on_decision(context& ctx, std::uint64_t id, const decision& d) override { loop_.decide(ctx, id, d); }

  // A stop (SIGINT, another node's failure) closes the model request in flight instead of waiting for it.
  void on_start(context& ctx) override {
    ctx.set_stop_hook([b = backend_.get()] { b->abort(); });
    backend_->trace_into(ctx.trace());
    if (loop_.paused()) loop_.ask_again(ctx);  // a restored paused task: its decisions are pending again
  }

  void on_message(context& ctx, std::size_t port, const value& v) override {
    prompt p = read_input(v);
    std::vector<agents::chat_message> messages;
    std::string system = system_;
    if (system_.find("{{") != std::string::npos) try {
        system = agents::render_prompt(system_, v, p.task, role_);
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("agent.llm `{}`: system: {}", name_, e.what()));
      }
    if (!p.context.empty()) system += (system.empty() ? "" : "\n\n") + ("Context (JSON):\n" + p.context);
    if (!system.empty()) messages.push_back({"system", system, {}, {}});
    for (const auto& [u, a] : memory_) {  // the conversation so far (memory: N), oldest first
      messages.push_back({"user", u, {}, {}});
      messages.push_back({"assistant", a, {}, {}});
    }
    messages.push_back({"user", p.task, {}, {}});
    backend_->set_input(v);
    task_ = p.task;
    loop_.start(ctx, std::move(messages),
                [this, task = p.task](context& c, agents::loop_result r) { emit_result(c, task, std::move(r)); });
  }

 private:
  static std::set<std::string> approve_tools_of(const params& p) {
    std::set<std::string> out;
    if (p.has("approve_tools"))
      for (const auto& t : p.get("approve_tools").as_list())
        if (t.is_string()) out.insert(t.as_string());
    return out;
  }

  void emit_result(context& ctx, const std::string& task, agents::loop_result r) {
    // The task is done: its exchange joins the memory, and nothing paused is left to restore.
    if (memory_size_ > 0) remember(task, r.text);
    if (memory_size_ > 0 || approvals_) ctx.checkpoint(saved_state(false));
    if (ctx.connected(1))
      for (auto& t : planned_tasks(r.text)) ctx.emit(1, std::move(t));
    ctx.emit(0, value{value_map{{"agent", name_}, {"role", role_}, {"task", task}, {"text", std::move(r.text)},
                                {"tool_calls", r.tool_calls}}});
  }

  // The exchange joins the memory; the oldest leave past memory_size_ (state, not history: bounded by N).
  void remember(const std::string& task, const std::string& text) {
    memory_.emplace_back(task, text);
    while (memory_.size() > memory_size_) memory_.erase(memory_.begin());
  }

  // The checkpoint: {memory: [{user, assistant}, ...]} with memory: N, {task, paused} while a task waits for
  // approvals (both when both); null when there is neither.
  value saved_state(bool paused) {
    value_map m;
    if (memory_size_ > 0) {
      value_list saved;
      saved.reserve(memory_.size());
      for (const auto& [u, a] : memory_) saved.emplace_back(value_map{{"user", u}, {"assistant", a}});
      m.emplace_back("memory", std::move(saved));
    }
    if (paused) {
      m.emplace_back("task", task_);
      m.emplace_back("paused", loop_.save());
    }
    return m.empty() ? value{} : value{std::move(m)};
  }

  std::string name_, role_, system_;
  std::unique_ptr<agents::backend> backend_;
  agents::agent_loop loop_;
  std::size_t memory_size_ = 0;
  std::vector<std::pair<std::string, std::string>> memory_;
  bool approvals_ = false;
  std::string task_;  // the task in flight (its user message)
};

// Validation (kind_spec::check): the scripted rules as the backend reads them at start, and the tools
// they call or read, each reported where it is written. A node's tools are the nodes in its `tools`; a
// node that lists tools at run time (tool.mcp) offers them as NODE__NAME.
void check_rules(const graph::graph& g, const graph::node& n, const graph::kind_catalog& catalog,
                 graph::diagnostics& diags) {
  if (const graph::config* urls = n.params.find("base_urls")) {
    const graph::config* url = n.params.find("base_url");
    auto as_value = [](const graph::config* c) { return c != nullptr ? std::optional<value>(to_value(*c)) : std::nullopt; };
    auto a = as_value(url), b = as_value(urls);
    if (auto bad = check_urls(a ? &*a : nullptr, b ? &*b : nullptr); !bad.empty())
      diags.error(urls->where().known() ? urls->where() : n.field_where("params"),
                  fmt::format("agent.llm `{}`: {}", n.name, bad));
  }
  // The values the node gets, when every edge into it comes from a source.value: {{input.PATH}} is checked
  // against them.
  std::vector<value> inputs;
  bool known = true;
  for (const auto& e : g.edges) {
    if (e.to.node != n.name) continue;
    const graph::node* from = g.find(e.from.node);
    const graph::config* v = from != nullptr && from->kind == "source.value" ? from->params.find("value") : nullptr;
    if (v == nullptr) known = false;
    else inputs.push_back(to_value(*v));
  }
  if (!known) inputs.clear();
  if (const graph::config* system = n.params.find("system"); system != nullptr && system->is_string())
    if (auto bad = agents::check_prompt(system->as_string(), inputs); !bad.empty())
      diags.error(system->where().known() ? system->where() : n.field_where("params"),
                  fmt::format("agent.llm `{}`: system: {}", n.name, bad));
  const graph::config* rules = n.params.find("rules");
  auto lists = [&](const std::string& t) {
    const graph::node* tool = g.find(t);
    const graph::kind_spec* kind = tool != nullptr ? catalog.find_kind(tool->kind) : nullptr;
    return kind != nullptr && kind->call && kind->call->lists_tools;
  };
  auto is_tool = [&](const std::string& name) {
    for (const auto& t : n.tools)
      if (lists(t) ? name.starts_with(t + "__") && name.size() > t.size() + 2 : name == t) return true;
    return false;
  };
  std::vector<std::string> names;
  for (const auto& t : n.tools) names.push_back(lists(t) ? t + "__NAME" : t);
  if (const graph::config* approve = n.params.find("approve_tools"); approve != nullptr && approve->is_list())
    for (const auto& t : approve->as_list()) {
      auto where = t.where().known() ? t.where() : n.field_where("params");
      if (!t.is_string() || !is_tool(t.as_string()))
        diags.error(where, fmt::format("agent.llm `{}`: approve_tools: {} is not one of its tools", n.name,
                                       t.is_string() ? "`" + t.as_string() + "`" : std::string("an entry")),
                    names.empty() ? "the node has no `tools`" : fmt::format("its tools: {}", fmt::join(names, ", ")));
    }
  if (rules == nullptr) return;
  for (const auto& p : agents::check_scripted_rules(to_value(*rules), is_tool, inputs)) {
    // The deepest value of the path that is written, else the rules themselves.
    const graph::config* at = rules;
    graph::location where = rules->where().known() ? rules->where() : n.field_where("params");
    for (const auto& step : p.path) {
      const graph::config* next = nullptr;
      if (at->is_map()) {
        next = at->find(step);
      } else if (std::size_t k = 0; at->is_list() && std::from_chars(step.data(), step.data() + step.size(), k).ec ==
                                                           std::errc{}) {
        if (k < at->as_list().size()) next = &at->as_list()[k];
      }
      if (next == nullptr) break;
      at = next;
      if (at->where().known()) where = at->where();
    }
    std::string hint = names.empty() ? "the node has no `tools`" : fmt::format("its tools: {}", fmt::join(names, ", "));
    diags.error(where, fmt::format("agent.llm `{}`: {}", n.name, p.message), p.unknown_tool ? hint : std::string());
  }
}

}  // namespace

kind_def llm_agent_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "agent.llm";
  s.doc = "an LLM agent: asks a chat-completions model (or scripted rules), calling its tools";
  s.inputs = {{"in", "tasks: a string, a map with task/text/prompt, or a list of team results"}};
  s.outputs = {{"out", "{agent, role, task, text, tool_calls} per task"},
               {"tasks", "{role, task} per task in a planner's JSON answer"}};
  s.params = {
      param_spec::string("backend", "http (a chat-completions server) or scripted (rules)")
          .def("scripted").one_of({"http", "scripted"}),
      param_spec::string("base_url", "the server's OpenAI API root (none and no base_urls: http://127.0.0.1:8000/v1)"),
      param_spec::list("base_urls",
                       "replicas of one model (OpenAI API roots), not with base_url: each request goes to the one "
                       "the in-process router chooses (docs/route.md)"),
      param_spec::string("route_policy", "how base_urls' router chooses: prefix, least-loaded or round-robin")
          .def("prefix").one_of({"prefix", "least-loaded", "round-robin"}),
      param_spec::string("model", "model name sent to the server").def("default"),
      param_spec::string("system", "system prompt; a template: {{input.FIELD}}, {{input}}, {{role}}").def(""),
      param_spec::string("role", "the agent's role (default: the node name)").def(""),
      param_spec::floating("temperature", "sampling temperature").def(0.2).at_least(0).at_most(2),
      param_spec::integer("max_tokens", "most tokens per model reply").def(512).at_least(1),
      param_spec::integer("timeout_ms", "per HTTP attempt").def(60000).at_least(1),
      param_spec::integer("retries", "extra attempts on connection errors, timeouts, 5xx, 429").def(2).at_least(0),
      param_spec::integer("backoff_ms", "wait before the first retry, doubling after").def(200).at_least(0),
      param_spec::string("api_key_env", "NAME of the environment variable holding the API key").def(""),
      param_spec::boolean("stream", "ask for server-sent events").def(false),
      param_spec::integer("max_turns", "most rounds of tool calls per task").def(6).at_least(1),
      param_spec::integer("tool_timeout_ms", "how long a tool call may take").def(30000).at_least(1),
      param_spec::list("rules", "the scripted backend's rules: {match, when, reply | call}")
          .def(graph::config(graph::config_list{})),
      param_spec::integer("memory",
                          "the last N exchanges (user message, final answer) sent to the model before each task; "
                          "N > 0 makes the node stateful (loom serve --state keeps it per thread)")
          .def(0).at_least(0).at_most(10000),
      param_spec::list("approve_tools",
                       "tools whose calls wait for a person (loom approve DIR NODE; needs --state): the paused task "
                       "is kept in the state file, the tool runs once approved, a rejection goes back to the model")
          .def(graph::config(graph::config_list{})),
  };
  // An agent waiting on a model server holds a thread; one answered by its scripted rules never waits
  // (its tool calls are asynchronous either way), so it runs on the shared scheduler: no thread hand-off
  // per task.
  s.blocking = true;
  s.blocking_for = [](const graph::config& params) {
    const auto* b = params.find("backend");
    return uses_http(b != nullptr && b->is_string() ? b->as_string() : "scripted");
  };
  // With memory the agent holds state across tasks: it checkpoints the memory after each one.
  s.stateful_for = [](const graph::config& params) {
    const auto* m = params.find("memory");
    return m != nullptr && m->is_int() && m->as_int() > 0;
  };
  s.thread_state = true;  // the memory is the conversation's: loom serve --state keeps it per thread
  s.check = check_rules;
  return {std::move(s), [](const node_init& init) { return std::make_unique<llm_agent>(init); }};
}

}  // namespace loom::actors
