// tests/fuzz/fuzz_llm_reply.cpp: libFuzzer over what agent.llm's http backend does with a model server's
// 2xx reply (actors/agents/backend.hpp read_chat_reply): the body as one JSON document and as server-sent
// events, the tool calls' arguments in it. Any input is a reply or a std::runtime_error the agent reports:
// never a crash, a stack overflow or another exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include "loom/actors/agents/backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  for (bool sse : {false, true}) {
    try {
      auto reply = loom::agents::read_chat_reply(body, sse);
      for (const auto& c : reply.tool_calls)
        if (c.id.empty() || (c.arguments_error.empty() && !c.arguments.is_object())) std::abort();
    } catch (const std::exception&) {
    }
  }
  return 0;
}
