// actors/agents/http_wire.hpp (private): what http_backend.cpp shares with http_wire.cpp, the
// chat-completions wire format: a message as the request's JSON, the error of a reply that breaks the format,
// and an excerpt of what the server sent for error messages. Reading a reply is read_chat_reply (backend.hpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "loom/actors/agents/backend.hpp"

namespace loom::agents::detail {

// `s` on one line, cut to `n` characters.
std::string excerpt(std::string s, std::size_t n = 200);

// One message as the request's `messages` entry.
nlohmann::ordered_json to_wire(const chat_message& m);

// What the model server sent that breaks the protocol (no `choices`, not JSON, a limit broken).
struct bad_response : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace loom::agents::detail
