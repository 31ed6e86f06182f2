// tests/mcp/client_test.cpp: tool.mcp in real runs of the `loom` binary against the reference MCP servers
// (installed from npm by the mcp_npm_install fixture): a scripted agent calls their tools and the graph's
// output holds the real results.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "loom/runtime/mcp/client.hpp"
#include "loom/runtime/mcp/stdio.hpp"
#include "tests/cli/process.hpp"
#include "tests/support/ports.hpp"

namespace fs = std::filesystem;
using loom::test::free_port;
using loom::test::loom_binary;
using loom::test::run_process;

namespace {

std::string npm_prefix() {
  const char* p = std::getenv("LOOM_MCP_NPM");
  REQUIRE_MESSAGE(p != nullptr, "LOOM_MCP_NPM is not set: run this test through ctest (the mcp_npm fixture)");
  return p;
}

std::string node_binary() {
  const char* n = std::getenv("LOOM_NODE");
  return n != nullptr && *n != '\0' ? n : "node";
}

std::string server_js(const std::string& package) {
  auto path = fs::path(npm_prefix()) / "node_modules/@modelcontextprotocol" / package / "dist/index.js";
  REQUIRE_MESSAGE(fs::exists(path), "missing " << path.string() << ": the mcp_npm_install fixture did not run");
  return path.string();
}

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("loom-mcp-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
}

// The `text` of each agent output line (sink.stdout, jsonl).
std::vector<std::string> answers(const std::string& out) {
  std::vector<std::string> texts;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("text")) texts.push_back(j["text"].get<std::string>());
  }
  return texts;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("tool.mcp: a scripted agent calls server-everything's tools over stdio") {
  auto dir = temp_dir("everything");
  write(dir / "tasks.jsonl",
        "{\"task\": \"add 2 and 40\"}\n{\"task\": \"echo hello loom\"}\n{\"task\": \"add a word\"}\n"
        "{\"task\": \"run long\"}\n{\"task\": \"add 1 and 1\"}\n");
  write(dir / "graph.yaml", R"(graph: mcp-everything
nodes:
  tasks:
    kind: source.file
    params: {path: )" + (dir / "tasks.jsonl").string() + R"(, format: jsonl}
  agent:
    kind: agent.llm
    tools: [everything]
    params:
      rules:
        - {match: "add a word", when: first, call: {tool: everything__get-sum, arguments: {a: "word", b: 1}}}
        - {match: "add a word", when: after_tool, reply: "sum: {{tool.everything__get-sum}}"}
        - {match: "add 2 and 40", when: first, call: {tool: everything__get-sum, arguments: {a: 2, b: 40}}}
        - {match: "add 1 and 1", when: first, call: {tool: everything__get-sum, arguments: {a: 1, b: 1}}}
        - {match: "add", when: after_tool, reply: "sum: {{tool.everything__get-sum.text}}"}
        - {match: "echo", when: first, call: {tool: everything__echo, arguments: {message: "hello loom"}}}
        - {match: "echo", when: after_tool, reply: "echo: {{tool.everything__echo.text}}"}
        - {match: "long", when: first, call: {tool: everything__trigger-long-running-operation, arguments: {duration: 20, steps: 20}}}
        - {match: "long", when: after_tool, reply: "long: {{tool.everything__trigger-long-running-operation}}"}
  everything:
    kind: tool.mcp
    params:
      command: [)" + node_binary() + ", " + server_js("server-everything") + R"(, stdio]
      timeout_ms: 2000
  out:
    kind: sink.stdout
    params: {format: jsonl}
edges:
  - tasks -> agent -> out
)");
  auto r = run_process({loom_binary(), "run", (dir / "graph.yaml").string(), "-q"}, {std::chrono::seconds(90)});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto texts = answers(r.out);
  REQUIRE(texts.size() == 5);
  CHECK(texts[0] == "sum: The sum of 2 and 40 is 42.");
  CHECK(has(texts[1], "echo: Echo: hello loom"));
  // A call the server refuses comes back to the model as the tool's error.
  CHECK(has(texts[2], "sum: {\"error\":\"tool.mcp `everything`: tool `get-sum` failed:"));
  // A call longer than timeout_ms is cancelled and fails; the server keeps serving the next one.
  CHECK(has(texts[3], "timed out after 2000 ms (cancelled)"));
  CHECK(texts[4] == "sum: The sum of 1 and 1 is 2.");
  fs::remove_all(dir);
}

TEST_CASE("tool.mcp: server-filesystem reads and lists files of a folder the test made") {
  auto dir = temp_dir("filesystem");
  fs::create_directories(dir / "notes");
  write(dir / "notes/permits.md", "Street vending in Paris needs a permit from the city hall.\n");
  write(dir / "notes/menu.md", "Lunch formula at 14 euros.\n");
  auto notes = fs::canonical(dir / "notes").string();
  write(dir / "graph.yaml", R"(graph: mcp-filesystem
nodes:
  task:
    kind: source.value
    params: {value: "read the notes"}
  reader:
    kind: agent.llm
    tools: [fs, calc]
    params:
      rules:
        - {when: first, call: {tool: fs__read_text_file, arguments: {path: )" + notes + R"(/permits.md}}}
        - {when: after_tool, reply: "{{tool.fs__read_text_file.text}}"}
  lister:
    kind: agent.llm
    tools: [fs]
    params:
      rules:
        - {when: first, call: {tool: fs__list_directory, arguments: {path: )" + notes + R"(}}}
        - {when: after_tool, reply: "{{tool.fs__list_directory.text}}"}
  fs:
    kind: tool.mcp
    params:
      command: [)" + node_binary() + ", " + server_js("server-filesystem") + ", " + notes + R"(]
      allow: [read_text_file, list_directory]
  calc:
    kind: tool.calculator
  out:
    kind: sink.stdout
    params: {format: jsonl}
edges:
  - task -> [reader, lister]
  - [reader, lister] -> out
)");
  auto r = run_process({loom_binary(), "run", (dir / "graph.yaml").string(), "-q"}, {std::chrono::seconds(90)});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto texts = answers(r.out);
  REQUIRE(texts.size() == 2);
  std::string all = texts[0] + "\n" + texts[1];
  CHECK(has(all, "Street vending in Paris needs a permit from the city hall."));
  CHECK(has(all, "[FILE] menu.md"));
  CHECK(has(all, "[FILE] permits.md"));
  // loom inspect --graph starts the node and prints its tools as agents offer them; `allow` narrows them.
  auto inspect = run_process({loom_binary(), "inspect", "--graph", (dir / "graph.yaml").string(), "fs"});
  INFO(inspect.err);
  CHECK(inspect.status == 0);
  CHECK(has(inspect.out, "fs (tool.mcp): 2 tools from stdio server"));
  CHECK(has(inspect.out, "\nfs__read_text_file: Read the complete contents of a file"));
  CHECK(has(inspect.out, "\nfs__list_directory: "));
  CHECK(has(inspect.out, "  path                  string  required"));
  CHECK_FALSE(has(inspect.out, "fs__write_file"));
  fs::remove_all(dir);
}

TEST_CASE("tool.mcp: a server that cannot start fails the run with its name and stderr") {
  auto dir = temp_dir("broken");
  write(dir / "graph.yaml", R"(graph: mcp-broken
nodes:
  task:
    kind: source.value
    params: {value: "x"}
  agent:
    kind: agent.llm
    tools: [bad]
    params:
      rules: [{reply: "never"}]
  bad:
    kind: tool.mcp
    params:
      command: [sh, -c, "echo 'no config found' >&2; exit 4"]
  out:
    kind: sink.stdout
edges:
  - task -> agent -> out
)");
  // validate stays offline: it never starts the server.
  auto v = run_process({loom_binary(), "validate", (dir / "graph.yaml").string()});
  CHECK(v.status == 0);
  auto r = run_process({loom_binary(), "run", (dir / "graph.yaml").string(), "-q"}, {std::chrono::seconds(60)});
  CHECK(r.status == 1);
  CHECK(has(r.err, "tool.mcp `bad`: cannot start the MCP server"));
  CHECK(has(r.err, "exited with status 4"));
  CHECK(has(r.err, "no config found"));

  // A header's value comes from the variable it names; an unset one fails the start, naming it.
  write(dir / "headers.yaml", R"(graph: mcp-headers
nodes:
  task: {kind: source.value, params: {value: "x"}}
  agent: {kind: agent.llm, tools: [remote], params: {rules: [{reply: "never"}]}}
  remote:
    kind: tool.mcp
    params: {url: "http://127.0.0.1:9/mcp", headers: {Authorization: LOOM_MCP_TEST_NO_SUCH_VARIABLE}}
  out: {kind: sink.stdout}
edges:
  - task -> agent -> out
)");
  r = run_process({loom_binary(), "run", (dir / "headers.yaml").string(), "-q"}, {std::chrono::seconds(60)});
  CHECK(r.status == 1);
  CHECK(has(r.err, "tool.mcp `remote`: headers.Authorization: the environment variable "
                   "`LOOM_MCP_TEST_NO_SUCH_VARIABLE` is not set"));

  // Neither command nor url (or both): the error says which to give.
  write(dir / "neither.yaml", R"(graph: mcp-neither
nodes:
  task: {kind: source.value, params: {value: "x"}}
  agent: {kind: agent.llm, tools: [nothing], params: {rules: [{reply: "never"}]}}
  nothing: {kind: tool.mcp}
  out: {kind: sink.stdout}
edges:
  - task -> agent -> out
)");
  r = run_process({loom_binary(), "run", (dir / "neither.yaml").string(), "-q"}, {std::chrono::seconds(60)});
  CHECK(r.status == 1);
  CHECK(has(r.err, "tool.mcp `nothing`: give exactly one of `command` (a stdio server) and `url`"));

  // A URL where nothing listens: the start fails, naming the URL.
  write(dir / "nobody.yaml", R"(graph: mcp-nobody
nodes:
  task: {kind: source.value, params: {value: "x"}}
  agent: {kind: agent.llm, tools: [remote], params: {rules: [{reply: "never"}]}}
  remote: {kind: tool.mcp, params: {url: "http://127.0.0.1:)" + std::to_string(free_port()) + R"(/mcp", init_timeout_ms: 3000}}
  out: {kind: sink.stdout}
edges:
  - task -> agent -> out
)");
  r = run_process({loom_binary(), "run", (dir / "nobody.yaml").string(), "-q"}, {std::chrono::seconds(60)});
  CHECK(r.status == 1);
  CHECK(has(r.err, "tool.mcp `remote`: cannot start the MCP server: http server http://127.0.0.1:"));

  // Servers that never answer: every wait has its deadline.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);  // listens, never accepts: connections hang in the backlog
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(silent, 16) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  write(dir / "silent.yaml", R"(graph: mcp-silent
nodes:
  task: {kind: source.value, params: {value: "x"}}
  agent: {kind: agent.llm, tools: [remote, local], params: {rules: [{reply: "never"}]}}
  remote: {kind: tool.mcp, params: {url: "http://127.0.0.1:)" + std::to_string(ntohs(addr.sin_port)) + R"(/mcp", init_timeout_ms: 1500}}
  local: {kind: tool.mcp, params: {command: [sleep, "60"], init_timeout_ms: 1500}}
  out: {kind: sink.stdout}
edges:
  - task -> agent -> out
)");
  r = run_process({loom_binary(), "run", (dir / "silent.yaml").string(), "-q"}, {std::chrono::seconds(60)});
  ::close(silent);
  CHECK(r.status == 1);
  CHECK(has(r.err, "`initialize` timed out after 1500 ms"));
  CHECK(r.seconds < 15);
  fs::remove_all(dir);
}

TEST_CASE("tool.mcp: server-everything over Streamable HTTP") {
  int port = free_port();
  // The server runs as a child of this test; the transport's destructor kills its process group.
  loom::mcp::child_transport server({{node_binary(), server_js("server-everything"), "streamableHttp"},
                                     {{"PORT", std::to_string(port)}}, ""});
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!has(server.stderr_tail(), "listening on port") && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE_MESSAGE(has(server.stderr_tail(), "listening on port"), server.stderr_tail());
  auto dir = temp_dir("http");
  write(dir / "tasks.jsonl", "{\"task\": \"add 20 and 22\"}\n{\"task\": \"run long\"}\n{\"task\": \"echo over http\"}\n");
  write(dir / "graph.yaml", R"(graph: mcp-http
nodes:
  tasks:
    kind: source.file
    params: {path: )" + (dir / "tasks.jsonl").string() + R"(, format: jsonl}
  agent:
    kind: agent.llm
    tools: [everything]
    params:
      rules:
        - {match: "add", when: first, call: {tool: everything__get-sum, arguments: {a: 20, b: 22}}}
        - {match: "add", when: after_tool, reply: "sum: {{tool.everything__get-sum.text}}"}
        - {match: "echo", when: first, call: {tool: everything__echo, arguments: {message: "over http"}}}
        - {match: "echo", when: after_tool, reply: "echo: {{tool.everything__echo.text}}"}
        - {match: "long", when: first, call: {tool: everything__trigger-long-running-operation, arguments: {duration: 20, steps: 20}}}
        - {match: "long", when: after_tool, reply: "long: {{tool.everything__trigger-long-running-operation}}"}
  everything:
    kind: tool.mcp
    params:
      url: http://127.0.0.1:)" + std::to_string(port) + R"(/mcp
      timeout_ms: 2000
  out:
    kind: sink.stdout
    params: {format: jsonl}
edges:
  - tasks -> agent -> out
)");
  auto r = run_process({loom_binary(), "run", (dir / "graph.yaml").string(), "-q"}, {std::chrono::seconds(90)});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto texts = answers(r.out);
  REQUIRE(texts.size() == 3);
  CHECK(texts[0] == "sum: The sum of 20 and 22 is 42.");
  CHECK(has(texts[1], "http server http://127.0.0.1:"));
  CHECK(has(texts[1], "timed out after 2000 ms (cancelled)"));
  CHECK(has(texts[2], "echo: Echo: over http"));
  fs::remove_all(dir);
}

TEST_CASE("configs/mcp_research.yaml: the team reads the notes through server-filesystem") {
  // The example as a user copies it, with npx replaced by the server the fixture installed (no network).
  auto dir = temp_dir("research");
  fs::copy(fs::path(LOOM_SOURCE_DIR) / "configs", dir / "configs", fs::copy_options::recursive);
  fs::create_directories(dir / "out");
  std::ifstream in(dir / "configs/mcp_research.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string npx = "[npx, -y, \"@modelcontextprotocol/server-filesystem@2026.8.31\",";
  auto at = text.find(npx);
  REQUIRE(at != std::string::npos);
  std::string local = "[";
  local += node_binary();
  local += ", ";
  local += server_js("server-filesystem");
  local += ",";
  text.replace(at, npx.size(), local);
  write(dir / "configs/mcp_research.yaml", text);
  loom::test::process_options o{std::chrono::seconds(90)};
  o.cwd = dir.string();
  auto r = run_process({loom_binary(), "run", "configs/mcp_research.yaml"}, o);
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::ifstream brief(dir / "out/research_brief.md");
  std::string out((std::istreambuf_iterator<char>(brief)), std::istreambuf_iterator<char>());
  CHECK(has(out, "# Research brief"));
  CHECK(has(out, "needs an AOT (autorisation d'occupation temporaire)"));
  CHECK(has(out, "[FILE] suppliers.md"));
  CHECK(has(out, "14700 euros"));
  fs::remove_all(dir);
}

TEST_CASE("tool.mcp: a server that crashes is restarted; a changed tool list reaches the next task") {
  auto dir = temp_dir("flaky");
  write(dir / "tasks.jsonl",
        "{\"task\": \"ok\"}\n{\"task\": \"crash\"}\n{\"task\": \"ok again\"}\n{\"task\": \"grow\"}\n"
        "{\"task\": \"late\"}\n");
  write(dir / "graph.yaml", R"(graph: mcp-flaky
nodes:
  tasks:
    kind: source.file
    params: {path: )" + (dir / "tasks.jsonl").string() + R"(, format: jsonl}
  agent:
    kind: agent.llm
    tools: [flaky]
    params:
      rules:
        - {match: "ok", when: first, call: {tool: flaky__ok, arguments: {}}}
        - {match: "ok", when: after_tool, reply: "{{tool.flaky__ok.text}}"}
        - {match: "crash", when: first, call: {tool: flaky__crash, arguments: {}}}
        - {match: "crash", when: after_tool, reply: "{{tool.flaky__crash}}"}
        - {match: "grow", when: first, call: {tool: flaky__grow, arguments: {}}}
        - {match: "grow", when: after_tool, reply: "{{tool.flaky__grow.text}}"}
        - {match: "late", when: first, call: {tool: flaky__late, arguments: {}}}
        - {match: "late", when: after_tool, reply: "{{tool.flaky__late}}"}
  flaky:
    kind: tool.mcp
    params:
      command: [)" + node_binary() + ", " + (fs::path(LOOM_SOURCE_DIR) / "tests/mcp/flaky_server.mjs").string() + ", " +
                                      npm_prefix() + R"(]
      server_restarts: 1
  out:
    kind: sink.stdout
    params: {format: jsonl}
edges:
  - tasks -> agent -> out
)");
  auto r = run_process({loom_binary(), "run", (dir / "graph.yaml").string(), "-q"}, {std::chrono::seconds(90)});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto texts = answers(r.out);
  REQUIRE(texts.size() == 5);
  CHECK(texts[0].rfind("ok from ", 0) == 0);
  CHECK(has(texts[1], "tool.mcp `flaky`: stdio server `"));
  CHECK(has(texts[1], "exited with status 3"));
  CHECK(has(texts[1], "flaky: crashing on purpose"));
  CHECK(texts[2].rfind("ok from ", 0) == 0);
  CHECK(texts[2] != texts[0]);  // another process: the server was started again
  CHECK(texts[3] == "grown");
  CHECK(has(texts[4], "late tool"));
  fs::remove_all(dir);
}

TEST_CASE("tool.mcp across hosts: an agent on worker a calls an MCP node placed on worker b") {
  auto dir = temp_dir("hosts");
  int pa = free_port(), pb = free_port();
  auto start_worker = [&](const std::string& name, int port) {
    auto w = std::make_unique<loom::mcp::child_transport>(loom::mcp::process_options{
        {loom_binary(), "worker", "--listen", "tcp://127.0.0.1:" + std::to_string(port), "--name", name}, {},
        dir.string()});
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!has(w->stderr_tail(), "listening on") && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE_MESSAGE(has(w->stderr_tail(), "listening on"), w->stderr_tail());
    return w;
  };
  auto a = start_worker("a", pa);
  auto b = start_worker("b", pb);
  write(dir / "cluster.yaml", "name: test\nhosts:\n  - {name: a, address: tcp://127.0.0.1:" + std::to_string(pa) +
                                  ", cpus: 4}\n  - {name: b, address: tcp://127.0.0.1:" + std::to_string(pb) +
                                  ", cpus: 4}\n");
  write(dir / "graph.yaml", R"(graph: mcp-hosts
nodes:
  task: {kind: source.value, params: {value: "add 2 and 3"}, placement: {host: a}}
  agent:
    kind: agent.llm
    tools: [everything]
    placement: {host: a}
    params:
      rules:
        - {when: first, call: {tool: everything__get-sum, arguments: {a: 2, b: 3}}}
        - {when: after_tool, reply: "{{tool.everything__get-sum.text}}"}
  everything:
    kind: tool.mcp
    placement: {host: b}
    params:
      command: [)" + node_binary() + ", " + server_js("server-everything") + R"(, stdio]
  out: {kind: sink.file, params: {path: )" + (dir / "answer.jsonl").string() + R"(}, placement: {host: a}}
edges:
  - task -> agent -> out
)");
  loom::test::process_options o{std::chrono::seconds(90)};
  o.cwd = dir.string();
  auto r = run_process({loom_binary(), "run", "graph.yaml", "--cluster", "cluster.yaml"}, o);
  INFO(r.err, "\n--- a:\n", a->stderr_tail(), "\n--- b:\n", b->stderr_tail());
  REQUIRE(r.status == 0);
  std::ifstream in(dir / "answer.jsonl");
  std::string answer((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(has(answer, "The sum of 2 and 3 is 5."));
  // The MCP server was started by worker b, where the node was placed, and not by a.
  CHECK(has(b->stderr_tail(), "node=everything kind=tool.mcp: stdio server"));
  CHECK_FALSE(has(a->stderr_tail(), "kind=tool.mcp"));
  fs::remove_all(dir);
}

TEST_CASE("mcp::client against server-everything: negotiation, the tool list, progress, isError") {
  auto t = std::make_unique<loom::mcp::child_transport>(
      loom::mcp::process_options{{node_binary(), server_js("server-everything"), "stdio"}, {}, ""});
  loom::mcp::client c(std::move(t));
  c.initialize(std::chrono::seconds(20));
  CHECK(c.protocol_version() == "2025-11-25");  // the newest revision of both
  auto tools = c.list_tools(std::chrono::seconds(10));
  std::vector<std::string> names;
  for (const auto& tool : tools) names.push_back(tool.name);
  CHECK(std::find(names.begin(), names.end(), "get-sum") != names.end());
  CHECK(std::find(names.begin(), names.end(), "echo") != names.end());
  std::vector<double> progress;
  auto r = c.call_tool("trigger-long-running-operation", {{"duration", 1}, {"steps", 4}}, std::chrono::seconds(20),
                       [&](double p, double total, const std::string&) {
                         progress.push_back(p);
                         CHECK(total == 4);
                       });
  CHECK_FALSE(r.is_error);
  CHECK(has(r.text, "Long running operation completed"));
  CHECK(progress == std::vector<double>{1, 2, 3, 4});
  auto structured = c.call_tool("get-structured-content", {{"location", "Chicago"}}, std::chrono::seconds(10));
  CHECK(structured.structured.is_object());
  auto bad = c.call_tool("get-sum", {{"a", "x"}, {"b", 1}}, std::chrono::seconds(10));
  CHECK(bad.is_error);
}

TEST_CASE("mcp::client: an initialize result nested 200,000 deep is refused by name, never a crash") {
  // A server that answers every request with a result nested far past the reader's limit.
  std::string script =
      "import sys, json\n"
      "for line in sys.stdin:\n"
      "    m = json.loads(line)\n"
      "    if 'id' in m:\n"
      "        sys.stdout.write('{\"jsonrpc\":\"2.0\",\"id\":' + json.dumps(m['id']) + ',\"result\":' +\n"
      "                         '[' * 200000 + ']' * 200000 + '}\\n')\n"
      "        sys.stdout.flush()\n";
  auto t = std::make_unique<loom::mcp::child_transport>(
      loom::mcp::process_options{{"python3", "-c", script}, {}, ""});
  loom::mcp::client c(std::move(t));
  CHECK_THROWS_WITH_AS(c.initialize(std::chrono::seconds(3)),
                       doctest::Contains("the server sent a message loom refused: parse error: in the message, arrays "
                                         "and objects are nested deeper than 64 levels"),
                       loom::mcp::protocol_error);
}
