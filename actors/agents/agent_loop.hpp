// actors/agents/agent_loop.hpp: the one loop every LLM agent runs, whatever its backend. It asks the model;
// when the model asks for tools it calls them through the node's context (ctx.call), and once every reply
// of that turn is in it gives them back to the model as `tool` messages and asks again, until the model
// answers with text or max_turns rounds of tool calls are spent. Owned by the node (agent.llm).
//
// Calls are asynchronous: start() returns while calls are outstanding and the loop keeps the conversation;
// the callbacks (run later on the node's actor) continue it and the last one calls `done`. A failed call,
// an unknown tool or malformed arguments go back to the model as {"error": "..."}; they never fail the run.
// A backend error (the model server is down) is thrown from start() or from the callback that asked.
//
// Approvals (docs/durability.md, "People in the loop"): a turn that asks for a tool named in
// loop_options::approve_tools makes none of its calls; the loop asks the node's context for a decision about
// each listed call (context::ask: {node, tool, arguments}) and pauses. The node keeps save() as its
// checkpoint, so the paused task survives a restart or the process (restore()). Once every listed call of
// the turn is decided (decide()), the turn's calls are made: approved ones as asked, edited ones with the
// edited arguments, rejected ones not at all (the model reads {"error": "the call was rejected ..."}).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "loom/actors/agents/backend.hpp"
#include "loom/runtime/node.hpp"

namespace loom::agents {

struct loop_options {
  int max_turns = 6;  // rounds of tool calls; the model's next request for tools ends the task
  std::chrono::milliseconds tool_timeout{30000};
  std::set<std::string> approve_tools;  // tools (as offered to the model) whose calls wait for a person
};

// The name an agent offers its model for tool `tool` of a node that lists its tools (tool.mcp): the node
// name, two underscores, and the tool name with every character outside [A-Za-z0-9_-] replaced by `_`, so
// that OpenAI function names stay valid: offered_tool_name("fs", "read.file") == "fs__read_file".
std::string offered_tool_name(const std::string& node, const std::string& tool);

struct loop_result {
  std::string text;             // the model's final answer (or a note that max_turns was reached)
  std::int64_t tool_calls = 0;  // tool calls the model made, failed ones included
};

class agent_loop {
 public:
  using finished = std::function<void(context&, loop_result)>;

  agent_loop(backend& b, loop_options o) : backend_(b), o_(o) {}
  agent_loop(const agent_loop&) = delete;
  agent_loop& operator=(const agent_loop&) = delete;

  // Starts one task from `messages` ([system,] user). The loop must be idle (not busy()).
  void start(context& ctx, std::vector<chat_message> messages, finished done);
  // True from start() until `done` has been called.
  bool busy() const { return busy_; }
  // Waiting for decisions about the turn's calls (approve_tools).
  bool paused() const { return !asked_.empty(); }
  // A decision about pending decision `id` (one this loop asked for; others are ignored). The last one of
  // the turn makes its calls and the task goes on.
  void decide(context& ctx, std::uint64_t id, const decision& d);
  // The paused task as a value (for the node's checkpoint), and the task made again from one: `done` as in
  // start(); the decisions are asked for again (ask_again, from the node's on_start).
  value save() const;
  void restore(const value& saved, finished done);
  void ask_again(context& ctx) const;
  // Called (on the node's actor, inside the attempt) whenever the loop pauses or a decision leaves it paused:
  // the node checkpoints save() there.
  void on_pause(std::function<void(context&)> hook) { on_pause_ = std::move(hook); }
  // The conversation so far (tests, diagnostics).
  const std::vector<chat_message>& messages() const { return messages_; }

 private:
  void discover(context& ctx);
  void discovered(context& ctx, std::size_t i, call_result r);
  void ask(context& ctx);
  void make_calls(context& ctx, const std::vector<tool_call>& calls);
  void run_calls(context& ctx);
  void deliver(context& ctx, std::size_t i, call_result r);
  void finish(context& ctx, std::string text);

  backend& backend_;
  loop_options o_;
  nlohmann::ordered_json tools_ = nlohmann::ordered_json::array();
  // Tools found by asking nodes that list theirs: offered name -> (node, the tool's own name).
  std::map<std::string, std::pair<std::string, std::string>> listed_;
  std::vector<std::string> listing_nodes_;             // the nodes asked at the start of the task
  std::vector<nlohmann::ordered_json> listing_tools_;  // their answers, as `tools` entries, by node
  std::size_t listing_pending_ = 0;
  std::vector<chat_message> messages_;
  std::vector<tool_call> turn_calls_;    // the calls of the turn in flight
  std::vector<call_result> turn_results_;
  std::size_t pending_ = 0;
  // Approvals: the decision asked for each listed call of the turn (id -> call index), and what was decided.
  std::map<std::uint64_t, std::size_t> asked_;
  std::vector<std::optional<decision>> verdicts_;
  std::function<void(context&)> on_pause_;
  int rounds_ = 0;
  std::int64_t calls_ = 0;
  bool busy_ = false;
  finished done_;
  // Callbacks hold a weak reference: a call that answers after this loop is gone (its node was rebuilt
  // after a failure) is dropped, not delivered to freed memory.
  std::shared_ptr<agent_loop*> self_ = std::make_shared<agent_loop*>(this);
};

}  // namespace loom::agents
