// actors/agents/agent_loop.cpp: the agent's model <-> tools loop (see agent_loop.hpp).
#include "loom/actors/agents/agent_loop.hpp"

#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "loom/runtime/json.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::agents {
namespace {

using ojson = nlohmann::ordered_json;

bool lists_tools(const context& ctx, const std::string& name) {
  const auto* kind = ctx.tool_kind(name);
  return kind != nullptr && kind->call && kind->call->lists_tools;
}

std::string tool_names(const ojson& tools) {
  std::string names;
  for (const auto& t : tools) names += (names.empty() ? "" : ", ") + t["function"]["name"].get<std::string>();
  return names.empty() ? "(none)" : names;
}

call_result failed(std::string why) { return call_result{false, value{}, std::move(why)}; }

}  // namespace

std::string offered_tool_name(const std::string& node, const std::string& tool) {
  std::string out = node + "__";
  for (char c : tool)
    out += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ? c : '_';
  return out;
}

void agent_loop::start(context& ctx, std::vector<chat_message> messages, finished done) {
  if (busy_) throw std::logic_error("agent_loop::start while a task is in flight");
  busy_ = true;
  messages_ = std::move(messages);
  done_ = std::move(done);
  rounds_ = 0;
  calls_ = 0;
  discover(ctx);
}

// Nodes that list their tools (tool.mcp) are asked for the list at the start of every task, through the
// ordinary call path, so a changed list is seen by the next task; the other tools come from their call_spec.
void agent_loop::discover(context& ctx) {
  listed_.clear();
  listing_nodes_.clear();
  for (const auto& name : ctx.tools())
    if (lists_tools(ctx, name)) listing_nodes_.push_back(name);
  listing_tools_.assign(listing_nodes_.size(), ojson::array());
  listing_pending_ = listing_nodes_.size();
  if (listing_pending_ == 0) return discovered(ctx, 0, call_result{});
  std::weak_ptr<agent_loop*> self = self_;
  for (std::size_t i = 0; i < listing_nodes_.size(); ++i)
    ctx.call(listing_nodes_[i], value{value_map{}}, o_.tool_timeout, [self, i](context& cx, call_result r) {
      if (auto alive = self.lock()) (*alive)->discovered(cx, i, std::move(r));
    });
}

void agent_loop::discovered(context& ctx, std::size_t i, call_result r) {
  if (i < listing_nodes_.size()) {
    if (!busy_ || listing_pending_ == 0) return;
    const std::string& node = listing_nodes_[i];
    const value* tools = r.ok && r.reply.is_map() ? r.reply.find("tools") : nullptr;
    if (tools == nullptr || !tools->is_list()) {
      spdlog::warn("agent: cannot list the tools of `{}`: {}", node, r.ok ? "the reply has no `tools` list" : r.error);
    } else {
      for (const auto& t : tools->as_list()) {
        const value* name = t.is_map() ? t.find("name") : nullptr;
        if (name == nullptr || !name->is_string()) continue;
        std::string offered = offered_tool_name(node, name->as_string());
        if (!listed_.emplace(offered, std::pair{node, name->as_string()}).second) {
          spdlog::warn("agent: tools of `{}` share the name `{}`; offering only the first", node, offered);
          continue;
        }
        const value* desc = t.find("description");
        const value* schema = t.find("input_schema");
        ojson params = schema != nullptr && schema->is_map() ? to_json(*schema) : ojson{{"type", "object"}};
        listing_tools_[i].push_back(ojson{{"type", "function"},
                                          {"function", {{"name", offered},
                                                        {"description", desc != nullptr ? to_text(*desc) : ""},
                                                        {"parameters", std::move(params)}}}});
      }
    }
    if (--listing_pending_ > 0) return;
  }
  // Every list is in: the tools in the graph's order, a listing node's tools where the node is named.
  tools_ = ojson::array();
  std::size_t k = 0;
  for (const auto& name : ctx.tools()) {
    const auto* kind = ctx.tool_kind(name);
    if (kind == nullptr || !kind->call) continue;
    if (!kind->call->lists_tools) tools_.push_back(tool_schema(name, *kind->call));
    else if (k < listing_tools_.size())
      for (auto& t : listing_tools_[k++]) tools_.push_back(std::move(t));
  }
  ask(ctx);
}

void agent_loop::ask(context& ctx) {
  chat_reply reply;
  try {
    reply = backend_.complete(messages_, tools_);
  } catch (...) {
    busy_ = false;  // the task is lost; the node may take the next one (or be rebuilt)
    throw;
  }
  if (reply.tool_calls.empty()) return finish(ctx, std::move(reply.text));
  if (rounds_ >= o_.max_turns) {
    auto note = fmt::format("[stopped: the model still asked for tools after {} rounds of tool calls (max_turns)]",
                            o_.max_turns);
    return finish(ctx, reply.text.empty() ? note : reply.text + "\n\n" + note);
  }
  ++rounds_;
  messages_.push_back(chat_message{"assistant", reply.text, reply.tool_calls, {}});
  make_calls(ctx, reply.tool_calls);
}

void agent_loop::make_calls(context& ctx, const std::vector<tool_call>& calls) {
  turn_calls_ = calls;
  verdicts_.assign(calls.size(), std::nullopt);
  asked_.clear();
  // Calls to a tool that needs approval: the turn waits for every such decision. Ids are unique across
  // restarts and resumes (a decision recorded for an earlier task must never match a later ask): the wall
  // clock in microseconds, then one per call.
  auto base = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  for (std::size_t i = 0; i < calls.size(); ++i)
    if (calls[i].arguments_error.empty() && o_.approve_tools.contains(calls[i].name)) asked_.emplace(base + i, i);
  if (asked_.empty()) return run_calls(ctx);
  ask_again(ctx);
  if (on_pause_) on_pause_(ctx);
}

void agent_loop::ask_again(context& ctx) const {
  for (const auto& [id, i] : asked_) {
    const auto& c = turn_calls_[i];
    ctx.ask(id, value{value_map{{"node", std::string(ctx.node_name())}, {"tool", c.name}, {"arguments", from_json(c.arguments)}}});
  }
}

void agent_loop::decide(context& ctx, std::uint64_t id, const decision& d) {
  auto it = asked_.find(id);
  if (it == asked_.end()) return;
  verdicts_[it->second] = d;
  asked_.erase(it);
  if (asked_.empty()) return run_calls(ctx);
  if (on_pause_) on_pause_(ctx);
}

void agent_loop::run_calls(context& ctx) {
  const auto& calls = turn_calls_;
  turn_results_.assign(calls.size(), call_result{});
  pending_ = calls.size();  // before any call: a callback may run at once (and the last one continues)
  calls_ += static_cast<std::int64_t>(calls.size());
  std::weak_ptr<agent_loop*> self = self_;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    tool_call c = calls[i];
    auto reply = [self, i](context& cx, call_result r) {
      if (auto alive = self.lock()) (*alive)->deliver(cx, i, std::move(r));
    };
    const auto& verdict = i < verdicts_.size() ? verdicts_[i] : std::nullopt;
    if (verdict && verdict->what == decision::verdict::reject) {
      deliver(ctx, i, failed(fmt::format("the call was rejected by {}{}", verdict->by.empty() ? "a person" : verdict->by,
                                         verdict->reason.empty() ? "" : ": " + verdict->reason)));
      continue;
    }
    if (verdict && verdict->what == decision::verdict::edit) {
      if (!verdict->edited.is_map()) {
        deliver(ctx, i, failed("the person's edited arguments are not an object"));
        continue;
      }
      c.arguments = to_json(verdict->edited);
    }
    if (!c.arguments_error.empty()) {
      deliver(ctx, i, failed(c.arguments_error));
    } else if (auto it = listed_.find(c.name); it != listed_.end()) {
      value request{value_map{{"tool", it->second.second}, {"arguments", from_json(c.arguments)}}};
      ctx.call(it->second.first, std::move(request), o_.tool_timeout, reply);
    } else if (ctx.tool_kind(c.name) == nullptr || lists_tools(ctx, c.name)) {
      deliver(ctx, i, failed(fmt::format("unknown tool `{}`; the tools are: {}", c.name, tool_names(tools_))));
    } else {
      ctx.call(c.name, from_json(c.arguments), o_.tool_timeout, reply);
    }
  }
}

void agent_loop::deliver(context& ctx, std::size_t i, call_result r) {
  if (!busy_ || i >= turn_results_.size() || pending_ == 0) return;
  turn_results_[i] = std::move(r);
  if (--pending_ > 0) return;
  for (std::size_t k = 0; k < turn_calls_.size(); ++k) {
    const auto& res = turn_results_[k];
    auto content = res.ok ? to_json(res.reply).dump() : ojson{{"error", res.error}}.dump();
    messages_.push_back(chat_message{"tool", std::move(content), {}, turn_calls_[k].id});
  }
  ask(ctx);
}

void agent_loop::finish(context& ctx, std::string text) {
  busy_ = false;
  turn_calls_.clear();
  turn_results_.clear();
  verdicts_.clear();
  asked_.clear();
  auto done = std::move(done_);
  done_ = nullptr;
  done(ctx, loop_result{std::move(text), calls_});
}

// -- a paused task as a value ------------------------------------------------------------------------------

namespace {

ojson call_json(const tool_call& c) {
  return {{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}, {"raw", c.raw_arguments},
          {"error", c.arguments_error}};
}

tool_call call_of(const ojson& j) {
  return tool_call{j.at("id").get<std::string>(), j.at("name").get<std::string>(), j.at("arguments"),
                   j.at("raw").get<std::string>(), j.at("error").get<std::string>()};
}

}  // namespace

value agent_loop::save() const {
  ojson messages = ojson::array();
  for (const auto& m : messages_) {
    ojson calls = ojson::array();
    for (const auto& c : m.tool_calls) calls.push_back(call_json(c));
    messages.push_back({{"role", m.role}, {"content", m.content}, {"tool_calls", std::move(calls)},
                        {"tool_call_id", m.tool_call_id}});
  }
  ojson listed = ojson::object();
  for (const auto& [offered, target] : listed_) listed[offered] = {target.first, target.second};
  ojson turn = ojson::array();
  for (const auto& c : turn_calls_) turn.push_back(call_json(c));
  ojson verdicts = ojson::array();
  for (const auto& v : verdicts_)
    verdicts.push_back(v ? ojson{{"what", to_string(v->what)}, {"edited", to_json(v->edited)}, {"reason", v->reason},
                                 {"by", v->by}}
                         : ojson());
  ojson asked = ojson::array();
  for (const auto& [id, i] : asked_) asked.push_back({id, i});
  return from_json(ojson{{"messages", std::move(messages)}, {"tools", tools_}, {"listed", std::move(listed)},
                         {"turn", std::move(turn)}, {"verdicts", std::move(verdicts)}, {"asked", std::move(asked)},
                         {"rounds", rounds_}, {"calls", calls_}});
}

void agent_loop::restore(const value& saved, finished done) {
  try {
    auto j = to_json(saved);
    messages_.clear();
    for (const auto& m : j.at("messages")) {
      chat_message cm{m.at("role").get<std::string>(), m.at("content").get<std::string>(), {},
                      m.at("tool_call_id").get<std::string>()};
      for (const auto& c : m.at("tool_calls")) cm.tool_calls.push_back(call_of(c));
      messages_.push_back(std::move(cm));
    }
    tools_ = j.at("tools");
    listed_.clear();
    for (const auto& [offered, target] : j.at("listed").items())
      listed_[offered] = {target.at(0).get<std::string>(), target.at(1).get<std::string>()};
    turn_calls_.clear();
    for (const auto& c : j.at("turn")) turn_calls_.push_back(call_of(c));
    verdicts_.clear();
    for (const auto& v : j.at("verdicts")) {
      if (v.is_null()) {
        verdicts_.emplace_back();
        continue;
      }
      auto what = verdict_of(v.at("what").get<std::string>());
      if (!what) throw std::out_of_range("a verdict that is none of approve, reject, edit");
      verdicts_.emplace_back(decision{*what, from_json(v.at("edited")), v.at("reason").get<std::string>(),
                                      v.at("by").get<std::string>()});
    }
    asked_.clear();
    for (const auto& a : j.at("asked")) {
      auto i = a.at(1).get<std::size_t>();
      if (i >= turn_calls_.size()) throw std::out_of_range("a decision for a call the turn does not have");
      asked_.emplace(a.at(0).get<std::uint64_t>(), i);
    }
    if (verdicts_.size() != turn_calls_.size()) throw std::out_of_range("the verdicts do not match the turn's calls");
    rounds_ = j.at("rounds").get<int>();
    calls_ = j.at("calls").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(fmt::format("agent: the saved paused task is not one this loom wrote: {}", e.what()));
  } catch (const std::out_of_range& e) {
    throw std::invalid_argument(fmt::format("agent: the saved paused task is not one this loom wrote: {}", e.what()));
  }
  busy_ = true;
  done_ = std::move(done);
}

}  // namespace loom::agents
