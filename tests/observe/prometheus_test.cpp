// tests/observe/prometheus_test.cpp: the real Prometheus scrapes real `loom` processes over 127.0.0.1 and
// what it stored, read back through its HTTP API, matches what the processes themselves report: a run's
// summary table, a server's answered requests. promtool checks every /metrics page.
#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/cli/process.hpp"
#include "tests/cluster/harness.hpp"
#include "tests/observe/prometheus.hpp"
#include "tests/serve/serve_process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace loom::test;

namespace {

struct scratch {
  fs::path dir;
  explicit scratch(const std::string& name) {
    dir = fs::temp_directory_path() / ("loom-metrics-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "out");
  }
  ~scratch() { fs::remove_all(dir); }
};

std::string addr(int port) { return "127.0.0.1:" + std::to_string(port); }

// node -> value of `sum by (node) (EXPR)`.
std::map<std::string, double> by_node(const std::vector<series>& r) {
  std::map<std::string, double> m;
  for (const auto& s : r) m[s.labels.at("node")] = s.value;
  return m;
}

// A predicate for query results: `sum by (node)` of each node equals the run summary's in (`in`) or out
// column, for every node of the summary and no other.
auto rows_match(const std::map<std::string, std::pair<double, double>>& rows, bool in) {
  return [&rows, in](const std::vector<series>& r) {
    auto m = by_node(r);
    if (m.size() != rows.size()) return false;
    for (const auto& [node, io] : rows)
      if (m[node] != (in ? io.first : io.second)) return false;
    return true;
  };
}

void check_promtool(const std::string& address) {
  auto text = get_metrics(address);
  REQUIRE_FALSE(text.empty());
  auto check = promtool_check(text);
  INFO(text);
  INFO(check.second);
  CHECK(check.first == 0);
}

}  // namespace

TEST_CASE("prometheus scrapes `loom run`: node and edge families equal the run's summary" * doctest::timeout(120)) {
  scratch s{"run"};
  int port = free_port();
  child run({loom_binary(), "run", std::string(LOOM_SOURCE_DIR) + "/configs/pipeline.yaml", "--metrics", addr(port),
             "--metrics-hold", "60"},
            s.dir / "run.log");
  REQUIRE(run.wait_for_log("loom: metrics at http://" + addr(port) + "/metrics", 20s));
  prometheus prom({addr(port)}, s.dir);
  REQUIRE_MESSAGE(run.wait_for_log("loom: run `pipeline` ok", 60s), run.log());
  REQUIRE(run.wait_for_log("count ", 5s));
  auto rows = summary_rows(run.log());
  REQUIRE(rows.size() == 4);
  CHECK(rows["count"].first == 1000000);

  auto in = prom.query_until("sum by (node) (loom_node_messages_in_total{graph=\"pipeline\"})", rows_match(rows, true), 30s);
  CHECK_MESSAGE(rows_match(rows, true)(in), prom.log());
  auto out = prom.query_until("sum by (node) (loom_node_messages_out_total)", rows_match(rows, false), 10s);
  CHECK(rows_match(rows, false)(out));

  auto info = prom.query("loom_run_info");
  REQUIRE(info.size() == 1);
  CHECK(info[0].labels["graph"] == "pipeline");
  CHECK(info[0].labels["run"].size() == 16);
  CHECK(prom.query("loom_edge_blocked_seconds_total").size() == 3);  // src->a, a->b, b->count
  auto busy = prom.query("sum(loom_node_busy_seconds_total)");
  REQUIRE(busy.size() == 1);
  CHECK(busy[0].value > 0);
  auto depth = prom.query("sum(loom_node_queue_depth)");  // the run is over: nothing waits
  REQUIRE(depth.size() == 1);
  CHECK(depth[0].value == 0);
  check_promtool(addr(port));

  run.signal(SIGINT);  // ends the hold
  CHECK(run.wait_exit(10s) == 0);
}

TEST_CASE("prometheus scrapes `loom serve`: requests by code, latency and in-flight equal what was answered" *
          doctest::timeout(120)) {
  scratch s{"serve"};
  int mport = free_port();
  serve_process server{"configs/serve_echo.yaml", {"--metrics", addr(mport)}};
  prometheus prom({addr(mport)}, s.dir);
  httplib::Client c{server.host(), server.port()};
  c.set_read_timeout(10s);
  auto body = [](bool stream) {
    return nlohmann::json{{"model", "serve_echo"},
                          {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                          {"stream", stream}}
        .dump();
  };
  int ok = 0;
  for (int i = 0; i < 5; ++i)
    if (auto r = c.Post("/v1/chat/completions", body(false), "application/json"); r && r->status == 200) ++ok;
  for (int i = 0; i < 2; ++i)
    if (auto r = c.Post("/v1/chat/completions", body(true), "application/json"); r && r->status == 200) ++ok;
  REQUIRE(ok == 7);
  auto bad = c.Post("/v1/chat/completions", "{not json", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);

  auto value_of = [&](const std::string& expr, double want) {
    auto r = prom.query_until(expr, [&](const auto& v) { return v.size() == 1 && v[0].value == want; }, 30s);
    INFO(expr);
    REQUIRE(r.size() == 1);
    CHECK(r[0].value == want);
  };
  value_of("loom_serve_requests_total{code=\"200\"}", 7);
  value_of("loom_serve_requests_total{code=\"400\"}", 1);
  value_of("loom_serve_request_seconds_count{stream=\"false\"}", 5);
  value_of("loom_serve_request_seconds_count{stream=\"true\"}", 2);
  value_of("loom_serve_request_seconds_bucket{stream=\"false\",le=\"+Inf\"}", 5);
  value_of("loom_serve_in_flight", 0);
  check_promtool(addr(mport));
}

TEST_CASE("loom serve counts the requests it refuses by their code: 401 without the key, 413 past --max-body" *
          doctest::timeout(120)) {
  int mport = free_port();
  ::setenv("LOOM_TEST_SERVE_KEY", "sesame", 1);
  serve_process server{"configs/serve_echo.yaml",
                       {"--metrics", addr(mport), "--api-key-env", "LOOM_TEST_SERVE_KEY", "--max-body", "1KiB"}};
  ::unsetenv("LOOM_TEST_SERVE_KEY");
  httplib::Client c{server.host(), server.port()};
  c.set_read_timeout(10s);
  std::string body = nlohmann::json{{"model", "serve_echo"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump();
  std::string big = nlohmann::json{{"model", "serve_echo"},
                                   {"messages", {{{"role", "user"}, {"content", std::string(4096, 'x')}}}}}
                        .dump();
  httplib::Headers key{{"Authorization", "Bearer sesame"}}, wrong{{"Authorization", "Bearer open"}};
  auto status = [&](const httplib::Headers& h, const std::string& b) {
    auto r = c.Post("/v1/chat/completions", h, b, "application/json");
    REQUIRE(r);
    return r->status;
  };
  CHECK(status(key, body) == 200);
  CHECK(status(key, body) == 200);
  CHECK(status({}, body) == 401);
  CHECK(status(wrong, body) == 401);
  CHECK(status(wrong, body) == 401);
  CHECK(status(key, big) == 413);
  std::string text;
  auto count = [&](const std::string& code) {
    auto line = "loom_serve_requests_total{code=\"" + code + "\"} ";
    auto at = text.find("\n" + line);
    if (at == std::string::npos) return -1.0;
    return std::stod(text.substr(at + 1 + line.size()));
  };
  // A request is counted once its answer is written (httplib's logger runs after the write), so the client
  // may read an answer before the server has counted it (CI once scraped before the 413 was counted):
  // scrape until every answer is counted, 10 s at most; the checks below then see any count too high.
  for (auto deadline = std::chrono::steady_clock::now() + 10s;;) {
    text = get_metrics(addr(mport));
    if ((count("200") >= 2 && count("401") >= 3 && count("413") >= 1) || std::chrono::steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(20ms);
  }
  INFO(text);
  CHECK(count("200") == 2);
  CHECK(count("401") == 3);
  CHECK(count("413") == 1);
  CHECK(count("429") == 0);  // nothing was refused for load (every code has its child from the start)
  check_promtool(addr(mport));
}

TEST_CASE("prometheus scrapes the flagship: tool calls by tool equal the tools' calls in the summary" *
          doctest::timeout(120)) {
  scratch s{"tools"};
  int port = free_port();
  fs::copy(fs::path(LOOM_SOURCE_DIR) / "configs", s.dir / "configs", fs::copy_options::recursive);
  child run({loom_binary(), "run", (s.dir / "configs/food_truck.yaml").string(), "--metrics", addr(port),
             "--metrics-hold", "60"},
            s.dir / "run.log");
  REQUIRE(run.wait_for_log("loom: metrics at", 20s));
  prometheus prom({addr(port)}, s.dir);
  REQUIRE_MESSAGE(run.wait_for_log("loom: run `food-truck` ok", 60s), run.log());
  REQUIRE(run.wait_for_log("calc ", 5s));
  auto rows = summary_rows(run.log());
  // The tools of the flagship, as the summary counts their calls (a tool's `in`).
  std::map<std::string, double> want;
  for (const auto* tool : {"knowledge", "forecast", "calc"})
    if (rows.count(tool)) want[tool] = rows[tool].first;
  INFO(run.log());
  REQUIRE_FALSE(want.empty());
  auto r = prom.query_until(
      "sum by (tool) (loom_tool_calls_total{status=~\"ok|error\"})",
      [&](const auto& v) {
        std::map<std::string, double> got;
        for (const auto& x : v) got[x.labels.at("tool")] = x.value;
        return got == want;
      },
      30s);
  std::map<std::string, double> got;
  for (const auto& x : r) got[x.labels.at("tool")] = x.value;
  CHECK(got == want);
  auto count = prom.query("sum(loom_tool_call_seconds_count)");
  REQUIRE(count.size() == 1);
  double total = 0;
  for (const auto& [t, n] : want) total += n;
  CHECK(count[0].value == total);
  check_promtool(addr(port));
  run.signal(SIGINT);
  CHECK(run.wait_exit(10s) == 0);
}

TEST_CASE("prometheus scrapes a two-worker run: the driver's merged view and each worker's own equal the summary" *
          doctest::timeout(180)) {
  namespace cl = loom::test::cluster;
  cl::cluster_dir d{"metrics"};
  int pa = cl::free_port(), pb = cl::free_port(), ma = cl::free_port(), mb = cl::free_port(), md = cl::free_port();
  cl::worker a{"a", pa, d.dir, {"--metrics", addr(ma)}};
  cl::worker b{"b", pb, d.dir, {"--metrics", addr(mb)}};
  auto cluster = d.cluster({{"a", pa}, {"b", pb}});
  child driver({loom_binary(), "run", std::string(LOOM_SOURCE_DIR) + "/configs/cluster_pipeline.yaml", "--cluster",
                cluster.string(), "--metrics", addr(md), "--metrics-hold", "60"},
               d.dir / "driver.log");
  REQUIRE(driver.wait_for_log("loom: metrics at", 20s));
  prometheus prom(std::map<std::string, std::vector<std::string>>{{"driver", {addr(md)}}, {"workers", {addr(ma), addr(mb)}}},
                  d.dir);
  REQUIRE_MESSAGE(driver.wait_for_log("loom: run `cluster-pipeline` ok", 60s), driver.log());
  REQUIRE(driver.wait_for_log("tally ", 5s));
  auto rows = summary_rows(driver.log());
  INFO(driver.log());
  REQUIRE(rows.size() == 3);
  CHECK(rows["tally"].first == 1000);

  for (const char* job : {"driver", "workers"}) {
    INFO("job " << job);
    auto in = prom.query_until(std::string("sum by (node) (loom_node_messages_in_total{job=\"") + job + "\"})",
                               rows_match(rows, true), 30s);
    CHECK(rows_match(rows, true)(in));
    auto out = prom.query_until(std::string("sum by (node) (loom_node_messages_out_total{job=\"") + job + "\"})",
                                rows_match(rows, false), 10s);
    CHECK(rows_match(rows, false)(out));
  }
  // The driver's view says which host each instance ran on: work has one replica per host.
  auto hosts = prom.query("count by (host) (loom_node_messages_in_total{job=\"driver\",node=\"work\"})");
  std::map<std::string, double> per_host;
  for (const auto& s : hosts) per_host[s.labels.at("host")] = s.value;
  CHECK(per_host == std::map<std::string, double>{{"a", 1}, {"b", 1}});
  // Values crossed hosts: the links carried bytes both ways, seen by the workers and in the driver's view.
  for (const char* dir : {"in", "out"}) {
    auto bytes = prom.query(std::string("sum(loom_link_bytes_total{job=\"driver\",host=~\"a|b\",direction=\"") + dir + "\"})");
    REQUIRE(bytes.size() == 1);
    CHECK(bytes[0].value > 0);
  }
  check_promtool(addr(md));
  check_promtool(addr(ma));
  driver.signal(SIGINT);
  CHECK(driver.wait_exit(10s) == 0);
}

TEST_CASE("a bad --metrics address or a port in use is a usage error naming the option" * doctest::timeout(60)) {
  auto config = std::string(LOOM_SOURCE_DIR) + "/configs/pipeline.yaml";
  auto r = run_process({loom_binary(), "run", config, "--metrics", "9464"});
  CHECK(r.status == 2);
  CHECK(r.err.find("--metrics: metrics address `9464`: expected HOST:PORT") != std::string::npos);
  httplib::Server taken;
  int port = taken.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  r = run_process({loom_binary(), "run", config, "--metrics", addr(port)});
  CHECK(r.status == 2);
  CHECK(r.err.find("cannot serve metrics on " + addr(port)) != std::string::npos);
}
