// tests/observe/ui_test.cpp: the live view (runtime/observe/ui): Graphviz's SVG has an element per node, edge
// and host with the ids the page looks for; the page is served from the binary without any external URL;
// /events streams parseable snapshots whose counts rise during a real run, and skips frames for a slow reader;
// open pages hold stream slots of their own, a foreign Host or Origin is refused, a port in use is not shared.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <spdlog/logger.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "loom/graph/builder.hpp"
#include "loom/runtime/observe/ui/page_files.hpp"
#include "loom/runtime/observe/ui/ui_server.hpp"
#include "loom/runtime/observe/ui/run_totals.hpp"
#include "tests/cli/process.hpp"
#include "tests/cluster/harness.hpp"
#include "tests/serve/serve_process.hpp"
#include "tests/support/graph_runner.hpp"
#include "tests/support/raw_socket.hpp"

using namespace loom;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

graph::graph sample_graph() {
  graph::builder b("sample");
  b.node("src", "source.sequence").param("count", 10);
  b.node("split", "flow.router").param("field", "").param("routes", graph::config_map{{"1", "one"}});
  b.node("work", "flow.forward").replicas(2);
  b.node("out", "sink.count");
  b.edge("src", "split");
  b.edge("split.one", "work");
  b.edge("split.default", "out");
  b.edge("work", "out");
  return b.build();
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Reads /events until `stop` says so or the deadline passes; every event's JSON, parsed.
std::vector<json> read_events(int port, const std::function<bool(const json&)>& stop,
                              std::chrono::milliseconds deadline, std::atomic<int>* received = nullptr,
                              std::chrono::milliseconds per_event_delay = 0ms,
                              std::chrono::milliseconds first_event_delay = 0ms) {
  std::vector<json> events;
  std::string buffer;
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(deadline).count() + 1, 0);
  auto until = std::chrono::steady_clock::now() + deadline;
  c.Get("/events", [&](const char* data, std::size_t n) {
    buffer.append(data, n);
    for (auto end = buffer.find("\n\n"); end != std::string::npos; end = buffer.find("\n\n")) {
      auto event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      REQUIRE(event.starts_with("data: "));
      events.push_back(json::parse(event.substr(6)));  // throws (fails the test) on a bad snapshot
      if (received) received->fetch_add(1);
      if (per_event_delay > 0ms) std::this_thread::sleep_for(per_event_delay);
      if (events.size() == 1 && first_event_delay > 0ms) std::this_thread::sleep_for(first_event_delay);
      if (stop(events.back())) return false;
    }
    return std::chrono::steady_clock::now() < until;
  });
  return events;
}

// Whether the first text of SVG group `node` lies within the polygon's bounding box of group `cluster`.
bool inside(const std::string& svg, const std::string& node, const std::string& cluster) {
  auto c = svg.find("<g id=\"" + cluster + "\"");
  auto n = svg.find("<g id=\"" + node + "\"");
  REQUIRE(c != std::string::npos);
  REQUIRE(n != std::string::npos);
  std::smatch m;
  auto rest = svg.substr(c);
  REQUIRE(std::regex_search(rest, m, std::regex(R"re(points="([^"]*)")re")));
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  std::string points = m[1];
  std::regex pair(R"re((-?[0-9.]+),(-?[0-9.]+))re");
  for (std::sregex_iterator it(points.begin(), points.end(), pair), end; it != end; ++it) {
    double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  rest = svg.substr(n);
  REQUIRE(std::regex_search(rest, m, std::regex(R"re(<text[^>]* x="(-?[0-9.]+)" y="(-?[0-9.]+)")re")));
  double x = std::stod(m[1]), y = std::stod(m[2]);
  return x > x0 && x < x1 && y > y0 && y < y1;
}

const json& node_of(const json& snapshot, const std::string& name) {
  for (const auto& n : snapshot["nodes"])
    if (n["name"] == name) return n;
  FAIL("no node " << name << " in " << snapshot.dump());
  return snapshot;
}

}  // namespace

TEST_CASE("the live view's SVG, laid out by Graphviz, has an element per node and edge with its id" *
          doctest::timeout(30)) {
  auto g = sample_graph();
  observe::ui::ui_server ui(g, {});
  const auto& svg = ui.svg();
  CHECK(svg.find("<svg") != std::string::npos);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    INFO("node " << g.nodes[i].name);
    CHECK(count_of(svg, "<g id=\"n" + std::to_string(i) + "\" class=\"node\">") == 1);
  }
  for (std::size_t i = 0; i < g.edges.size(); ++i) {
    INFO("edge " << g.edges[i].from.str() << " -> " << g.edges[i].to.str());
    CHECK(count_of(svg, "<g id=\"e" + std::to_string(i) + "\" class=\"edge\">") == 1);
  }
  CHECK(count_of(svg, "class=\"node\"") == 4);
  CHECK(count_of(svg, "class=\"edge\"") == 4);
  CHECK(svg.find(">work x2</text>") != std::string::npos);
  CHECK(svg.find(">one→in (256)</text>") != std::string::npos);
  CHECK(count_of(svg, "class=\"cluster\"") == 0);  // one process: no host groups
}

TEST_CASE("on a cluster run the live view draws each host as a group holding its nodes" * doctest::timeout(30)) {
  auto g = sample_graph();
  observe::ui::ui_options o;
  o.hosts = {{"src", "alpha"}, {"split", "alpha"}, {"work", "beta"}, {"out", "alpha"}};
  auto dot = observe::ui::ui_dot(g, o.hosts);
  CHECK(dot.find("subgraph cluster_0") != std::string::npos);
  CHECK(dot.find("subgraph cluster_1") != std::string::npos);
  observe::ui::ui_server ui(g, o);
  const auto& svg = ui.svg();
  CHECK(count_of(svg, "class=\"cluster\"") == 2);
  auto alpha = svg.find("<g id=\"h0\" class=\"cluster\">"), beta = svg.find("<g id=\"h1\" class=\"cluster\">");
  REQUIRE(alpha != std::string::npos);
  REQUIRE(beta != std::string::npos);
  CHECK(svg.find(">host alpha</text>", alpha) < svg.find("</g>", alpha));  // each group carries its host's name
  CHECK(svg.find(">host beta</text>", beta) < svg.find("</g>", beta));
  // Each node's label lies inside its host's box.
  CHECK(inside(svg, "n2", "h1"));
  CHECK_FALSE(inside(svg, "n2", "h0"));
  for (auto n : {"n0", "n1", "n3"}) {
    CHECK(inside(svg, n, "h0"));
    CHECK_FALSE(inside(svg, n, "h1"));
  }
  CHECK(json::parse(ui.snapshot())["hosts"]["work"] == "beta");
}

TEST_CASE("the page is served from the binary and names no external URL" * doctest::timeout(30)) {
  observe::ui::ui_server ui(sample_graph(), {});
  int port = ui.start();
  REQUIRE(port > 0);
  httplib::Client c("127.0.0.1", port);
  auto index = c.Get("/");
  REQUIRE(index);
  CHECK(index->status == 200);
  CHECK(index->get_header_value("Content-Type").starts_with("text/html"));
  CHECK(index->get_header_value("Content-Security-Policy").find("default-src 'self'") != std::string::npos);
  REQUIRE(!observe::ui::page_files().empty());
  for (const auto& f : observe::ui::page_files()) {
    INFO(f.path);
    auto r = c.Get(std::string(f.path));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == f.data);
    CHECK(r->body.find("http:") == std::string::npos);
    CHECK(r->body.find("https:") == std::string::npos);
    CHECK(r->body.find("//cdn") == std::string::npos);
  }
  // Every file the page refers to is one the server has.
  std::regex ref(R"re((?:src|href)="([^"]*)")re");
  int refs = 0;
  for (std::sregex_iterator it(index->body.begin(), index->body.end(), ref), end; it != end; ++it, ++refs) {
    auto path = (*it)[1].str();
    INFO(path);
    CHECK(path.starts_with("/"));
    CHECK_FALSE(path.starts_with("//"));
    auto r = c.Get(path);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  CHECK(refs >= 2);  // the script and the style sheet
  auto svg = c.Get("/graph.svg");
  REQUIRE(svg);
  CHECK(svg->get_header_value("Content-Type") == "image/svg+xml");
  CHECK(svg->body == ui.svg());
  auto missing = c.Get("/nothing.js");
  REQUIRE(missing);
  CHECK(missing->status == 404);
}

TEST_CASE("/events streams parseable snapshots whose counts rise during a real run" * doctest::timeout(60)) {
  test::graph_runner runner;
  graph::builder b("watched");
  b.node("numbers", "source.sequence").param("count", 300);
  b.node("pace", "flow.throttle").param("rate", 200);
  b.node("tally", "sink.count");
  b.chain({"numbers", "pace", "tally"});
  auto g = b.build();

  observe::ui::ui_server ui(g, {});
  int port = ui.start();
  std::atomic<int> received{0};
  std::vector<json> events;
  std::thread reader([&] {
    events = read_events(port, [](const json& s) { return s["state"] != "running" && s["state"] != "starting"; },
                         30s, &received);
  });
  for (auto until = std::chrono::steady_clock::now() + 10s; received == 0 && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(10ms);
  REQUIRE(received > 0);  // the reader is connected: it has the first snapshot

  local::run_options o;
  o.progress_every = 100ms;
  o.on_progress = [&](const local::run_report& r) { ui.publish(r); };
  auto report = runner.run(g, o);  // validates and fills defaults first
  REQUIRE(report.result == local::run_report::outcome::ok);
  ui.finish(report);
  reader.join();

  REQUIRE(events.size() >= 4);
  CHECK(events.front()["state"] == "starting");
  CHECK(events.back()["state"] == "ok");
  std::uint64_t last_in = 0, rises = 0;
  std::int64_t last_seq = -1;
  bool rate_seen = false;
  for (const auto& s : events) {
    CHECK(s["seq"].get<std::int64_t>() > last_seq);
    last_seq = s["seq"].get<std::int64_t>();
    REQUIRE(s["nodes"].size() == 3);
    REQUIRE(s["edges"].size() == 2);
    auto in = node_of(s, "tally")["in"].get<std::uint64_t>();
    CHECK(in >= last_in);
    if (in > last_in) ++rises;
    last_in = in;
    if (s["state"] == "running" && node_of(s, "tally")["rate"].get<double>() > 0) rate_seen = true;
  }
  CHECK(rises >= 2);
  CHECK(rate_seen);
  CHECK(last_in == 300);
  CHECK(node_of(events.back(), "numbers")["out"] == 300);
  // The throttle holds its input queue: at some point the source waited for credit on its edge.
  bool blocked_seen = false;
  for (const auto& s : events)
    for (const auto& e : s["edges"])
      if (e["id"] == "e0" && e["blocked"].get<bool>()) blocked_seen = true;
  CHECK(blocked_seen);
}

TEST_CASE("a slow /events reader skips frames: it gets the newest snapshot, not a backlog" * doctest::timeout(60)) {
  observe::ui::ui_options o;
  o.log_lines = 100;
  observe::ui::ui_server ui(sample_graph(), o);
  // Large frames (about 400 KB each: 100 log lines of 4000 characters), so that the socket buffers hold few.
  for (int i = 0; i < 100; ++i) ui.log(std::string(4000, 'x'));
  int port = ui.start();
  std::atomic<int> received{0};
  std::vector<json> events;
  std::thread reader([&] {
    // Stalls for 2 s after its first event (a browser tab in the background), then reads on.
    events = read_events(port, [&](const json& s) { return s["seq"].get<int>() == 301; }, 30s, &received, 0ms, 2000ms);
  });
  for (auto until = std::chrono::steady_clock::now() + 10s; received == 0 && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(10ms);
  REQUIRE(received > 0);
  local::run_report r;
  r.nodes.push_back(local::node_stats{"src", "source.sequence", 0, 1});
  for (int i = 1; i <= 300; ++i) {
    r.nodes[0].out = static_cast<std::uint64_t>(i);
    r.seconds = i * 0.001;
    ui.publish(r);  // never waits for the reader
  }
  reader.join();
  REQUIRE(!events.empty());
  CHECK(events.back()["seq"] == 301);  // 1 (starting) + 300
  CHECK(node_of(events.back(), "src")["out"] == 300);
  MESSAGE("frames received: " << events.size() << " of 301");
  CHECK(events.size() < 200);  // frames were skipped, not queued
}

// A raw connection to 127.0.0.1:port that sends `request` and reads until the end of the response's headers
// (3 s at most); returns the descriptor (open) and the headers.
std::pair<int, std::string> open_raw(int port, const std::string& request) {
  int fd = loom::test::connect_loopback(port, std::chrono::seconds(3));
  loom::test::send_all(fd, request);
  std::string got = loom::test::read_head(fd);
  return {fd, got.substr(0, got.find("\r\n\r\n"))};
}

TEST_CASE("open pages do not starve the live view: /events streams have their own slots, beyond them a 503" *
          doctest::timeout(60)) {
  observe::ui::ui_server ui(sample_graph(), {});
  int port = ui.start();
  std::vector<int> fds;
  int streaming = 0, refused = 0;
  for (int i = 0; i < 24; ++i) {  // a browser tab holds one /events stream
    auto [fd, head] = open_raw(port, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    fds.push_back(fd);
    CAPTURE(head);
    if (head.starts_with("HTTP/1.1 200")) ++streaming;
    if (head.starts_with("HTTP/1.1 503")) {
      ++refused;
      CHECK(head.find("Retry-After: 1") != std::string::npos);
    }
  }
  CHECK(streaming == 16);
  CHECK(refused == 8);
  // Every stream slot taken, the page's other requests still answer at once.
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(2, 0);
  for (const char* path : {"/snapshot", "/graph.svg", "/"}) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = c.Get(path);
    CAPTURE(path);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  }
  for (int fd : fds) close(fd);
}

TEST_CASE("the live view refuses a Host that is not its name and a page of another origin (DNS rebinding)" *
          doctest::timeout(30)) {
  observe::ui::ui_server ui(sample_graph(), {});
  int port = ui.start();
  auto p = std::to_string(port);
  auto status = [&](const std::string& headers) {
    auto [fd, head] = open_raw(port, "GET /snapshot HTTP/1.1\r\n" + headers + "\r\n");
    close(fd);
    return head.size() > 12 ? std::atoi(head.c_str() + 9) : -1;
  };
  CHECK(status("Host: evil.example:" + p + "\r\n") == 403);
  CHECK(status("Host: evil.example:" + p + "\r\nOrigin: http://evil.example:" + p + "\r\n") == 403);
  CHECK(status("Host: 127.0.0.1:" + p + "\r\nOrigin: http://evil.example\r\n") == 403);
  CHECK(status("Host: 127.0.0.1:" + p + "\r\n") == 200);
  CHECK(status("Host: localhost:" + p + "\r\nOrigin: http://localhost:" + p + "\r\n") == 200);
}

TEST_CASE("a second live view on a port in use fails, naming the address, instead of sharing it" *
          doctest::timeout(30)) {
  observe::ui::ui_server first(sample_graph(), {});
  int port = first.start();
  observe::ui::ui_options o;
  o.port = port;
  observe::ui::ui_server second(sample_graph(), o);
  auto expected = "cannot listen on 127.0.0.1:" + std::to_string(port) + ": address in use";
  CHECK_THROWS_WITH_AS(second.start(), doctest::Contains(expected.c_str()), std::runtime_error);
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/snapshot");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("a snapshot sums replicas, shows queue fill against the input edges and which edges wait for credit") {
  observe::ui::ui_server ui(sample_graph(), {});
  local::run_report r;
  r.seconds = 1;
  // work has 2 replicas; its input edge split.one -> work (capacity 256) has one producer: 256 per instance.
  r.nodes.push_back(local::node_stats{"work", "flow.forward", 0, 2, 10, 10, 0, 0, 0, 0, 0, 0, 128});
  r.nodes.push_back(local::node_stats{"work", "flow.forward", 1, 2, 5, 5, 0, 0, 1, 0, 0, 0, 128});
  r.edges.push_back(local::edge_stats{"split", "split", "work", "split.one -> work.in", 5'000'000, true});
  r.edges.push_back(local::edge_stats{"split", "split", "out", "split.default -> out.in", 0, false});
  ui.publish(r);
  auto s = json::parse(ui.snapshot());
  const auto& work = node_of(s, "work");
  CHECK(work["in"] == 15);
  CHECK(work["queued"] == 256);
  CHECK(work["capacity"] == 512);
  CHECK(work["fill"].get<double>() == doctest::Approx(0.5));
  CHECK(work["restarts"] == 1);
  CHECK(work["rate"].get<double>() == doctest::Approx(15.0));
  // `out` takes two edges, from split (one instance) and from work (two): 256 + 2 * 256.
  CHECK(node_of(s, "out")["capacity"] == 768);
  CHECK(s["edges"][1]["id"] == "e1");
  CHECK(s["edges"][1]["blocked"] == true);
  CHECK(s["edges"][1]["blocked_ms"].get<double>() == doctest::Approx(5.0));
  CHECK(s["edges"][2]["blocked"] == false);
  CHECK(s["edges"][0]["blocked"] == false);
  CHECK(s["state"] == "running");
}

TEST_CASE("the live view keeps the last log lines from its spdlog sink") {
  observe::ui::ui_options o;
  o.log_lines = 3;
  observe::ui::ui_server ui(sample_graph(), o);
  spdlog::logger logger("ui-test", ui.log_sink());
  for (int i = 0; i < 5; ++i) logger.warn("line {}", i);
  ui.log("driver: said so");
  ui.publish(local::run_report{});
  auto lines = json::parse(ui.snapshot())["log"];
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].get<std::string>().ends_with("warning: line 3"));
  CHECK(lines[1].get<std::string>().ends_with("warning: line 4"));
  CHECK(std::regex_match(lines[2].get<std::string>(), std::regex(R"(\[\d\d:\d\d:\d\d\] driver: said so)")));
}

TEST_CASE("--ui addresses: PORT, :PORT, HOST:PORT; anything else is an error naming it") {
  observe::ui::ui_options o;
  observe::ui::parse_address("8080", o);
  CHECK(o.host == "127.0.0.1");
  CHECK(o.port == 8080);
  observe::ui::parse_address("0.0.0.0:0", o);
  CHECK(o.host == "0.0.0.0");
  CHECK(o.port == 0);
  observe::ui::parse_address(":9000", o);
  CHECK(o.port == 9000);
  for (std::string bad : {"", "web", "1:99999", "host:", "12ab", "-1"}) {
    INFO(bad);
    try {
      observe::ui::parse_address(bad, o);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("--ui `" + bad + "`") != std::string::npos);
    }
  }
}

TEST_CASE("loom run --ui with a bad address is a usage error naming it, before the run starts" * doctest::timeout(60)) {
  auto r = test::run_process({test::loom_binary(), "run", LOOM_SOURCE_DIR "/tests/observe/slow.yaml", "--ui", "nowhere"});
  CHECK(r.status == 2);
  CHECK(r.err.find("--ui `nowhere`") != std::string::npos);
  CHECK(r.err.find("interrupted") == std::string::npos);
  CHECK(r.err.find("slow-watch") == std::string::npos);  // no run began
}

TEST_CASE("run_totals sums the runs that finished and adds the latest counts of those in flight") {
  observe::ui::run_totals t;
  local::run_report r;
  r.nodes.push_back(local::node_stats{"a", "source.value", 0, 1, 0, 1});
  r.nodes.push_back(local::node_stats{"b", "flow.forward", 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 7});
  r.edges.push_back(local::edge_stats{"a", "a", "b", "a.out -> b.in", 2'000'000, true});
  t.done(0, r);
  t.done(1, r);
  r.result = local::run_report::outcome::failed;
  t.done(0, r);
  r.nodes[1].in = 5;
  t.update(3, r);
  CHECK(t.finished() == 3);
  CHECK(t.failed() == 1);
  CHECK(t.in_flight() == 1);
  auto c = t.combined(2.5);
  CHECK(c.seconds == 2.5);
  REQUIRE(c.nodes.size() == 2);
  CHECK(c.nodes[0].out == 4);
  CHECK(c.nodes[1].in == 8);
  CHECK(c.nodes[1].queued == 7);  // a queue is a gauge: the runs in flight only
  REQUIRE(c.edges.size() == 1);
  CHECK(c.edges[0].blocked);  // the run in flight waits
  CHECK(c.edges[0].blocked_ns == 8'000'000);
  t.done(3, r);
  c = t.combined(3);
  CHECK(c.nodes[1].in == 8);
  CHECK(c.nodes[1].queued == 0);
  CHECK_FALSE(c.edges[0].blocked);
}

TEST_CASE("loom serve --ui shows the served graph with the counts of every request summed" * doctest::timeout(90)) {
  int ui_port = test::free_port();
  test::serve_process serve("configs/serve_echo.yaml", {"--ui", "127.0.0.1:" + std::to_string(ui_port)});
  INFO(serve.err());
  httplib::Client api(serve.host(), serve.port());
  for (int i = 0; i < 3; ++i) {
    auto r = api.Post("/v1/chat/completions",
                      R"({"model":"serve_echo","messages":[{"role":"user","content":"hello"}]})", "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  httplib::Client ui("127.0.0.1", ui_port);
  json s;
  for (auto until = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < until;) {
    auto r = ui.Get("/snapshot");
    REQUIRE(r);
    s = json::parse(r->body);
    if (node_of(s, "reply")["in"] == 3) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(node_of(s, "reply")["in"] == 3);
  CHECK(node_of(s, "echo")["out"] == 3);
  CHECK(s["state"].get<std::string>().starts_with("serving: 3 runs done (0 failed)"));
  auto svg = ui.Get("/graph.svg");
  REQUIRE(svg);
  CHECK(svg->body.find(">echo</text>") != std::string::npos);
  serve.signal(SIGTERM);
  CHECK(serve.wait(20s) == 0);
}

TEST_CASE("loom run --cluster --ui draws each host as a group of its nodes, with the workers' counts live" *
          doctest::timeout(90)) {
  namespace tc = test::cluster;
  tc::cluster_dir dir("ui");
  int pa = tc::free_port(), pb = tc::free_port(), ui_port = tc::free_port();
  tc::worker a("a", pa, dir.dir), b("b", pb, dir.dir);
  auto cluster = dir.cluster({{"a", pa}, {"b", pb}});
  // About 3 s: the source on a, the throttle on b, the sink back on a. The capacity is the graph's own, so
  // the link across hosts keeps it (not the wide default window): the source waits for the throttle.
  auto graph = dir.write("watch.yaml", R"(graph: cluster-watch
defaults: {capacity: 16}
nodes:
  numbers: {kind: source.sequence, params: {count: 300}, placement: {host: a}}
  pace: {kind: flow.throttle, params: {rate: 100}, placement: {host: b}}
  tally: {kind: sink.count, params: {expect: 300}, placement: {host: a}}
edges:
  - numbers -> pace -> tally
)");
  test::process_result run;
  std::atomic<bool> ended{false};
  std::thread driver([&] {
    run = test::run_process({test::loom_binary(), "run", graph.string(), "--cluster", cluster.string(), "--ui",
                             "127.0.0.1:" + std::to_string(ui_port)},
                            {.deadline = 60s});
    ended = true;
  });
  httplib::Client ui("127.0.0.1", ui_port);
  std::string svg;
  json s;
  std::set<std::uint64_t> tally_while_running;
  bool waiting_seen = false;
  for (auto until = std::chrono::steady_clock::now() + 40s; !ended && std::chrono::steady_clock::now() < until;) {
    if (svg.empty())
      if (auto r = ui.Get("/graph.svg"); r && r->status == 200) svg = r->body;
    if (auto snap = ui.Get("/snapshot"); snap && snap->status == 200) {
      auto now = json::parse(snap->body);
      if (now["state"] == "running") {
        s = now;
        tally_while_running.insert(node_of(now, "tally")["in"].get<std::uint64_t>());
        for (const auto& e : now["edges"])
          if (e["id"] == "e0" && e["blocked"].get<bool>()) waiting_seen = true;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  driver.join();
  INFO(run.err);
  CHECK(run.status == 0);
  REQUIRE(!svg.empty());
  CHECK(count_of(svg, "class=\"cluster\"") == 2);
  CHECK(inside(svg, "n0", "h0"));  // numbers, on a (the first host among the nodes)
  CHECK(inside(svg, "n2", "h0"));  // tally, on a
  CHECK(inside(svg, "n1", "h1"));  // pace, on b
  CHECK(svg.find(">host a</text>") != std::string::npos);
  CHECK(svg.find(">host b</text>") != std::string::npos);
  REQUIRE(!s.is_null());
  CHECK(s["hosts"]["pace"] == "b");
  CHECK(s["log"].dump().find("driver: run ") != std::string::npos);  // the driver's log lines reach the page
  // The workers' progress reaches the driver while the run goes on: counts between none and all, rising.
  INFO("tally while running: " << json(tally_while_running).dump());
  CHECK(std::count_if(tally_while_running.begin(), tally_while_running.end(),
                      [](std::uint64_t n) { return n > 0 && n < 300; }) >= 2);
  CHECK(waiting_seen);  // the source on a waits for credit from the throttle on b
}
