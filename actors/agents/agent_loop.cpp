// actors/agents/agent_loop.cpp: the agent's model <-> tools loop (see agent_loop.hpp).
#include "loom/actors/agents/agent_loop.hpp"

#include <fmt/format.h>

#include <spdlog/spdlog.h>

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
  turn_results_.assign(calls.size(), call_result{});
  pending_ = calls.size();  // before any call: a callback may run at once (and the last one continues)
  calls_ += static_cast<std::int64_t>(calls.size());
  std::weak_ptr<agent_loop*> self = self_;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const tool_call& c = calls[i];
    auto reply = [self, i](context& cx, call_result r) {
      if (auto alive = self.lock()) (*alive)->deliver(cx, i, std::move(r));
    };
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
  auto done = std::move(done_);
  done_ = nullptr;
  done(ctx, loop_result{std::move(text), calls_});
}

}  // namespace loom::agents
