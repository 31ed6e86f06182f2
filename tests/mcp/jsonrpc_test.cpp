// tests/mcp/jsonrpc_test.cpp: JSON-RPC messages and the stdio transport, without any MCP server.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loom/actors/agents/agent_loop.hpp"
#include "loom/runtime/mcp/jsonrpc.hpp"
#include "loom/runtime/mcp/stdio.hpp"

using loom::jsonrpc::json;
namespace rpc = loom::jsonrpc;
namespace mcp = loom::mcp;

namespace {
int classify_error(const json& m) {
  try {
    rpc::classify(m);
  } catch (const rpc::error& e) {
    return e.code;
  }
  return 0;
}
}  // namespace

TEST_CASE("jsonrpc: the four shapes are built and recognised") {
  auto r = rpc::classify(rpc::request(7, "tools/list", json::object()));
  CHECK(r.type == rpc::kind::request);
  CHECK(r.id == 7);
  CHECK(r.method == "tools/list");
  CHECK(rpc::classify(rpc::notification("notifications/initialized", nullptr)).type == rpc::kind::notification);
  CHECK(rpc::classify(rpc::result("a", json{{"x", 1}})).payload["x"] == 1);
  auto e = rpc::classify(rpc::error_response(3, rpc::method_not_found, "no"));
  CHECK(e.type == rpc::kind::error_response);
  CHECK(e.payload["code"] == rpc::method_not_found);
}

TEST_CASE("jsonrpc: malformed messages are invalid requests, bad text a parse error") {
  CHECK(classify_error(json::array()) == rpc::invalid_request);
  CHECK(classify_error(json{{"id", 1}, {"method", "x"}}) == rpc::invalid_request);  // no jsonrpc
  CHECK(classify_error(json{{"jsonrpc", "1.0"}, {"id", 1}, {"method", "x"}}) == rpc::invalid_request);
  CHECK(classify_error(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", 5}}) == rpc::invalid_request);
  CHECK(classify_error(json{{"jsonrpc", "2.0"}, {"id", 1.5}, {"method", "x"}}) == rpc::invalid_request);
  CHECK(classify_error(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "x"}, {"params", 3}}) == rpc::invalid_request);
  CHECK(classify_error(json{{"jsonrpc", "2.0"}, {"id", 1}}) == rpc::invalid_request);  // neither result nor error
  CHECK(classify_error(json{{"jsonrpc", "2.0"}, {"id", 1}, {"error", "bad"}}) == rpc::invalid_request);
  int code = 0;
  try {
    rpc::parse("{\"jsonrpc\": ");
  } catch (const rpc::error& err) {
    code = err.code;
  }
  CHECK(code == rpc::parse_error);
  code = 0;
  try {
    rpc::parse(std::string(rpc::max_message_bytes + 1, ' '));
  } catch (const rpc::error& err) {
    code = err.code;
  }
  CHECK(code == rpc::parse_error);
}

TEST_CASE("jsonrpc: a message nested 300,000 deep is a parse error naming the limit, never a crash") {
  std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":)" + std::string(300'000, '[') +
                     std::string(300'000, ']') + "}}";
  try {
    rpc::parse(deep);
    FAIL("parsed");
  } catch (const rpc::error& err) {
    CHECK(err.code == rpc::parse_error);
    CHECK(std::string(err.what()) == "parse error: in the message, arrays and objects are nested deeper than 64 levels");
  }
  CHECK(rpc::parse(std::string(60, '[') + std::string(60, ']')).is_array());
}

TEST_CASE("offered tool names: NODE__TOOL with characters outside [A-Za-z0-9_-] replaced") {
  CHECK(loom::agents::offered_tool_name("fs", "read_file") == "fs__read_file");
  CHECK(loom::agents::offered_tool_name("everything", "get-sum") == "everything__get-sum");
  CHECK(loom::agents::offered_tool_name("x", "a.b/c d:é") == "x__a_b_c_d___");
}

TEST_CASE("stdio transport: messages go to a child and come back; its stderr and exit are reported") {
  {
    mcp::child_transport t({{"cat"}, {}, {}});
    t.send(rpc::request(1, "ping", nullptr));
    auto line = t.receive(mcp::clock::now() + std::chrono::seconds(5));
    REQUIRE(line);
    CHECK(json::parse(*line)["method"] == "ping");
    // Nothing more: receive keeps its deadline.
    auto start = mcp::clock::now();
    CHECK_FALSE(t.receive(start + std::chrono::milliseconds(200)));
    CHECK(mcp::clock::now() - start < std::chrono::seconds(2));
  }
  mcp::child_transport dying({{"sh", "-c", "echo 'something went wrong' >&2; exit 3"}, {}, {}});
  std::string why;
  try {
    dying.receive(mcp::clock::now() + std::chrono::seconds(5));
  } catch (const mcp::transport_error& e) {
    why = e.what();
  }
  CHECK(why.find("stdio server `sh -c") != std::string::npos);
  CHECK(why.find("exited with status 3") != std::string::npos);
  CHECK(why.find("something went wrong") != std::string::npos);
}

TEST_CASE("stdio transport: env and cwd reach the child; a missing program is named") {
  mcp::child_transport t({{"sh", "-c", "printf '%s %s\\n' \"$LOOM_MCP_TEST\" \"$(pwd)\""}, {{"LOOM_MCP_TEST", "hello"}}, "/tmp"});
  auto line = t.receive(mcp::clock::now() + std::chrono::seconds(5));
  REQUIRE(line);
  CHECK(*line == "hello /tmp");
  std::string why;
  try {
    mcp::child_transport missing({{"loom-no-such-program"}, {}, {}});
  } catch (const mcp::transport_error& e) {
    why = e.what();
  }
  CHECK(why.find("cannot start `loom-no-such-program`") != std::string::npos);
}

TEST_CASE("stdio transport: the whole process group is killed and reaped at the end") {
  pid_t child = 0, grandchild_group = 0;
  {
    // A server that ignores its closed stdin and TERM, and started a process of its own.
    mcp::child_transport t({{"sh", "-c", "trap '' TERM; sleep 60 & echo started; wait"}, {}, {}});
    REQUIRE(t.receive(mcp::clock::now() + std::chrono::seconds(5)));
    child = t.pid();
    grandchild_group = child;
  }
  CHECK(::kill(child, 0) != 0);               // gone and reaped: no zombie left
  // The sleep in its group was killed too (its new parent may take a moment to reap it).
  for (int i = 0; i < 200 && ::kill(-grandchild_group, 0) == 0; ++i) ::usleep(10000);
  CHECK(::kill(-grandchild_group, 0) != 0);
}
