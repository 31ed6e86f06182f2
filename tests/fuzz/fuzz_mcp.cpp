// tests/fuzz/fuzz_mcp.cpp: libFuzzer over the MCP server's message handling (runtime/mcp/server.hpp), with a
// tool that echoes its arguments. Any input must be answered (a result or a JSON-RPC error) or ignored (a
// notification or a response): never a crash, an exception out of handle(), or a hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "loom/runtime/mcp/server.hpp"

namespace {

class echo_tools final : public loom::mcp::tool_provider {
 public:
  std::vector<loom::mcp::server_tool> tools() const override {
    return {{"echo", "Echoes its arguments.", {{"type", "object"}}}};
  }
  reply call(const std::string&, const loom::jsonrpc::json& arguments, const loom::mcp::call_control& ctl) override {
    ctl.progress(1, 2, "half");
    if (arguments.contains("fail")) throw std::runtime_error("asked to fail");
    return {arguments.dump(), arguments};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static echo_tools tools;
  loom::mcp::server server(tools, loom::mcp::server_info{});
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t replies = 0;
  server.handle(text, [&](const loom::jsonrpc::json& m) {
    if (!m.is_object() || m.value("jsonrpc", "") != "2.0") std::abort();  // every reply is JSON-RPC
    ++replies;
  });
  server.wait_idle();
  return 0;
}
