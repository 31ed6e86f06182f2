// runtime/route/prompt.hpp: the text the router's prefix index sees for one chat-completions request: its
// `tools`, then each message as the client sent it (compact JSON, its own key order, one per line), so a
// conversation's next turn starts with exactly the bytes of its previous turn. `loom route` (cli/route.cpp)
// and agent.llm with `base_urls` (actors/agents/http_backend.cpp) key their routers on it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace loom::route {

inline std::string prompt_text(const nlohmann::ordered_json& request) {
  using ojson = nlohmann::ordered_json;
  std::string out;
  if (request.contains("tools")) out += request["tools"].dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  if (request.contains("messages"))
    for (const auto& m : request["messages"]) out += m.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  return out;
}

}  // namespace loom::route
