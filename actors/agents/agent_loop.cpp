// actors/agents/agent_loop.cpp: the agent's model <-> tools loop (see agent_loop.hpp).
#include "actors/agents/agent_loop.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "runtime/json.hpp"
#include "runtime/schema.hpp"

namespace loom::agents {
namespace {

using ojson = nlohmann::ordered_json;

// The OpenAI `tools` entries for the node's tools, from each tool kind's call_spec.
ojson tool_schemas(const context& ctx) {
  auto tools = ojson::array();
  for (const auto& name : ctx.tools())
    if (const auto* kind = ctx.tool_kind(name); kind != nullptr && kind->call) tools.push_back(tool_schema(name, *kind->call));
  return tools;
}

std::string tool_names(const context& ctx) {
  std::string names;
  for (const auto& n : ctx.tools()) names += (names.empty() ? "" : ", ") + n;
  return names.empty() ? "(none)" : names;
}

call_result failed(std::string why) { return call_result{false, value{}, std::move(why)}; }

}  // namespace

void agent_loop::start(context& ctx, std::vector<chat_message> messages, finished done) {
  if (busy_) throw std::logic_error("agent_loop::start while a task is in flight");
  busy_ = true;
  messages_ = std::move(messages);
  done_ = std::move(done);
  tools_ = tool_schemas(ctx);
  rounds_ = 0;
  calls_ = 0;
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
    if (!c.arguments_error.empty()) {
      deliver(ctx, i, failed(c.arguments_error));
    } else if (ctx.tool_kind(c.name) == nullptr) {
      deliver(ctx, i, failed(fmt::format("unknown tool `{}`; the tools are: {}", c.name, tool_names(ctx))));
    } else {
      ctx.call(c.name, from_json(c.arguments), o_.tool_timeout, [self, i](context& cx, call_result r) {
        if (auto alive = self.lock()) (*alive)->deliver(cx, i, std::move(r));
      });
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
