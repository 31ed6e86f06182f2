// tests/observe/metrics_test.cpp: the registry and the Prometheus text format: names, escaping, values,
// histograms (cumulative buckets, +Inf, _sum, _count), merging, reading back (the cluster push), and the
// real `promtool check metrics` on what we write.
#include <doctest/doctest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "loom/runtime/run_report.hpp"
#include "loom/runtime/observe/metrics.hpp"
#include "loom/runtime/observe/metrics_server.hpp"
#include "loom/runtime/observe/run_metrics.hpp"

using namespace loom::observe;

namespace {

// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  auto path = std::string(LOOM_BINARY_DIR) + "/metrics-test-" + std::to_string(getpid()) + ".prom";
  std::ofstream(path) << text;
  std::string out;
  auto cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[512];
  while (auto n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  std::remove(path.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("label values and help text are escaped as the text format says") {
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("a\"b") == "a\\\"b");
  CHECK(escape_label_value("back\\slash") == "back\\\\slash");
  CHECK(escape_label_value("two\nlines") == "two\\nlines");
  CHECK(escape_help("say \"hi\"\\\n") == "say \"hi\"\\\\\\n");  // quotes stay in HELP
}

TEST_CASE("values: integers without a fraction, infinities and NaN spelled out") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(1000000) == "1000000");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(std::stod(format_value(1.0 / 3)) == 1.0 / 3);  // reads back exactly
}

TEST_CASE("metric and label names are checked") {
  CHECK(valid_metric_name("loom_node_messages_in_total"));
  CHECK(valid_metric_name("ns:rule_1"));
  CHECK_FALSE(valid_metric_name("1abc"));
  CHECK_FALSE(valid_metric_name("a-b"));
  CHECK_FALSE(valid_metric_name(""));
  CHECK(valid_label_name("node"));
  CHECK_FALSE(valid_label_name("a:b"));
  registry r;
  CHECK_THROWS_AS(r.get_counter("bad-name", "x"), std::invalid_argument);
  CHECK_THROWS_AS(r.get_counter("ok_total", "x", {{"le", "1"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.get_counter("ok_total", "x", {{"__reserved", "1"}}), std::invalid_argument);
  r.get_counter("same_total", "x", {{"a", "1"}});
  CHECK_THROWS_AS(r.get_gauge("same_total", "x", {{"a", "1"}}), std::invalid_argument);    // other type
  CHECK_THROWS_AS(r.get_counter("same_total", "x", {{"b", "1"}}), std::invalid_argument);  // other labels
}

TEST_CASE("a counter family: HELP, TYPE, one line per child; the same labels give the same child") {
  registry r;
  auto& a = r.get_counter("loom_test_total", "Things \"counted\".\nTwo lines.", {{"node", "a\"b"}});
  auto& b = r.get_counter("loom_test_total", "ignored", {{"node", "c"}});
  CHECK(&r.get_counter("loom_test_total", "", {{"node", "c"}}) == &b);
  a.add(3);
  b.add();
  auto& t = r.get_counter("loom_time_seconds_total", "Time.", {}, 1e-9);
  t.add(1'500'000'000);
  CHECK(r.text() ==
        "# HELP loom_test_total Things \"counted\".\\nTwo lines.\n"
        "# TYPE loom_test_total counter\n"
        "loom_test_total{node=\"a\\\"b\"} 3\n"
        "loom_test_total{node=\"c\"} 1\n"
        "# HELP loom_time_seconds_total Time.\n"
        "# TYPE loom_time_seconds_total counter\n"
        "loom_time_seconds_total 1.5\n");
}

TEST_CASE("a histogram: cumulative buckets, le inclusive, +Inf, _sum and _count") {
  registry r;
  auto& h = r.get_histogram("loom_wait_seconds", "Waits.", {{"tool", "calc"}}, {0.1, 1, 0.5});
  h.observe(0.05);
  h.observe(0.1);  // on a bound: counted in that bucket
  h.observe(0.7);
  h.observe(5);
  CHECK(r.text() ==
        "# HELP loom_wait_seconds Waits.\n"
        "# TYPE loom_wait_seconds histogram\n"
        "loom_wait_seconds_bucket{tool=\"calc\",le=\"0.1\"} 2\n"
        "loom_wait_seconds_bucket{tool=\"calc\",le=\"0.5\"} 2\n"
        "loom_wait_seconds_bucket{tool=\"calc\",le=\"1\"} 3\n"
        "loom_wait_seconds_bucket{tool=\"calc\",le=\"+Inf\"} 4\n"
        "loom_wait_seconds_sum{tool=\"calc\"} 5.85\n"
        "loom_wait_seconds_count{tool=\"calc\"} 4\n");
}

TEST_CASE("gauges and collectors; families of one name from several sources are merged") {
  registry r;
  r.get_gauge("loom_in_flight", "Now.").set(2);
  int calls = 0;
  auto id = r.add_collector([&](std::vector<family>& out) {
    ++calls;
    out.push_back({"loom_a_total", "From a snapshot.", metric_type::counter, {{"loom_a_total", {{"x", "1"}}, 7}}});
    out.push_back({"loom_a_total", "", metric_type::counter, {{"loom_a_total", {{"x", "2"}}, 8}}});
  });
  auto text = r.text();
  CHECK(calls == 1);
  CHECK(text ==
        "# HELP loom_a_total From a snapshot.\n# TYPE loom_a_total counter\n"
        "loom_a_total{x=\"1\"} 7\nloom_a_total{x=\"2\"} 8\n"
        "# HELP loom_in_flight Now.\n# TYPE loom_in_flight gauge\nloom_in_flight 2\n");
  r.remove_collector(id);
  CHECK(r.text().find("loom_a_total") == std::string::npos);
  CHECK(calls == 1);
}

TEST_CASE("text read back with extra labels (a worker's samples at the driver)") {
  registry r;
  r.get_counter("loom_x_total", "X \\ y.", {{"node", "q\"\\\nz"}}).add(5);
  r.get_histogram("loom_h_seconds", "H.", {}, {1}).observe(0.5);
  auto families = parse_text(r.text(), {{"host", "a"}});
  REQUIRE(families.size() == 2);
  CHECK(families[0].name == "loom_h_seconds");
  CHECK(families[0].type == metric_type::histogram);
  CHECK(families[0].samples.size() == 4);
  CHECK(families[1].help == "X \\ y.");
  REQUIRE(families[1].samples.size() == 1);
  auto& s = families[1].samples[0];
  CHECK(s.value == 5);
  REQUIRE(s.labels.size() == 2);
  CHECK(s.labels[0] == std::pair<std::string, std::string>{"host", "a"});
  CHECK(s.labels[1] == std::pair<std::string, std::string>{"node", "q\"\\\nz"});
  // Written again, it is the same text plus the label.
  CHECK(write_text(families).find("loom_x_total{host=\"a\",node=\"q\\\"\\\\\\nz\"} 5\n") != std::string::npos);
  CHECK_THROWS_WITH_AS(parse_text("# TYPE a counter\na{x=\"1\" 3\n"), doctest::Contains("line 2"), std::runtime_error);
  CHECK_THROWS_WITH_AS(parse_text("a 1\nb{x=1} 3\n"), doctest::Contains("line 2"), std::runtime_error);
  CHECK_THROWS_WITH_AS(parse_text("a one\n"), doctest::Contains("not a number"), std::runtime_error);
}

TEST_CASE("a run's report as node and edge families") {
  loom::local::run_report rep;
  loom::local::node_stats n;
  n.node = "work";
  n.kind = "flow.forward";
  n.instance = 1;
  n.in = 10;
  n.out = 9;
  n.busy_ns = 2'000'000'000;
  n.queued = 4;
  rep.nodes.push_back(n);
  rep.edges.push_back({"src", "src", "work", "src.out -> work.in", 500'000'000, true});
  std::vector<family> out;
  append_run_families(out, rep, "g", "r1");
  auto text = write_text(out);
  CHECK(text.find("loom_node_messages_in_total{graph=\"g\",node=\"work\",kind=\"flow.forward\",instance=\"1\"} 10\n") !=
        std::string::npos);
  CHECK(text.find("loom_node_busy_seconds_total{graph=\"g\",node=\"work\",kind=\"flow.forward\",instance=\"1\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("loom_node_queue_depth{graph=\"g\",node=\"work\",kind=\"flow.forward\",instance=\"1\"} 4\n") !=
        std::string::npos);
  CHECK(text.find("loom_edge_blocked_seconds_total{graph=\"g\",from=\"src\",to=\"work\",edge=\"src.out -> work.in\"} 0.5\n") !=
        std::string::npos);
  CHECK(text.find("loom_run_info{graph=\"g\",run=\"r1\"} 1\n") != std::string::npos);
}

TEST_CASE("promtool check metrics passes on what the registry writes") {
  registry r;
  r.get_counter("loom_node_messages_in_total", "Values in.", {{"node", "a \"quoted\" \\ name\nx"}}).add(3);
  r.get_counter("loom_node_busy_seconds_total", "Busy.", {{"node", "a"}}, 1e-9).add(12345);
  r.get_gauge("loom_serve_in_flight", "In flight.").set(1);
  auto& h = r.get_histogram("loom_tool_call_seconds", "Tool calls.", {{"tool", "calc"}});
  h.observe(0.002);
  h.observe(3);
  std::vector<family> run;
  loom::local::run_report rep;
  rep.nodes.push_back({});
  rep.nodes.back().node = "n";
  append_run_families(run, rep, "g", "1");
  auto id = r.add_collector([&](std::vector<family>& out) { merge(out, run); });
  auto check = promtool_check(r.text());
  INFO(r.text());
  INFO(check.second);
  CHECK(check.first == 0);
  r.remove_collector(id);
  // The check can fail: a counter without _total is reported.
  registry bad;
  bad.get_counter("loom_things", "No suffix.").add();
  CHECK(promtool_check(bad.text()).first != 0);
}

TEST_CASE("the metrics server answers GET /metrics and rejects a bad address") {
  CHECK(parse_listen_address("127.0.0.1:9464").port == 9464);
  CHECK(parse_listen_address("[::1]:0").host == "::1");
  CHECK_THROWS_WITH_AS(parse_listen_address("9464"), doctest::Contains("HOST:PORT"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_listen_address("127.0.0.1:http"), doctest::Contains("port `http`"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_listen_address("127.0.0.1:70000"), doctest::Contains("65535"), std::invalid_argument);
  registry r;
  r.get_counter("loom_served_total", "Served.").add(42);
  metrics_server s{"127.0.0.1:0", r};
  CHECK(s.port() > 0);
  httplib::Client c{"127.0.0.1", s.port()};
  auto res = c.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == text_content_type);
  CHECK(res->body == "# HELP loom_served_total Served.\n# TYPE loom_served_total counter\nloom_served_total 42\n");
  auto other = c.Get("/");
  REQUIRE(other);
  CHECK(other->status == 404);
  // Taking the same port again fails with a clear error.
  CHECK_THROWS_WITH_AS(metrics_server(s.address(), r), doctest::Contains("cannot serve metrics"), std::runtime_error);
}

TEST_CASE("the driver's cluster view: each host's samples with a host label; unreadable samples are dropped") {
  registry r;
  {
    cluster_view view{r};
    view.set("a", "# HELP loom_x_total X.\n# TYPE loom_x_total counter\nloom_x_total{node=\"n\"} 3\n");
    view.set("b", "# TYPE loom_x_total counter\nloom_x_total{node=\"n\"} 4\n");
    view.set("c", "loom_x_total{node=\"n\" 4\n");  // broken: dropped, the others stay
    CHECK(r.text() ==
          "# HELP loom_x_total X.\n# TYPE loom_x_total counter\n"
          "loom_x_total{host=\"a\",node=\"n\"} 3\nloom_x_total{host=\"b\",node=\"n\"} 4\n");
    view.set("a", "# TYPE loom_x_total counter\nloom_x_total{node=\"n\"} 5\n");  // the latest push replaces
    CHECK(r.text().find("loom_x_total{host=\"a\",node=\"n\"} 5\n") != std::string::npos);
  }
  CHECK(r.text().empty());  // gone with the view
}

TEST_CASE("the Grafana dashboard queries only families that docs/metrics.md documents") {
  std::ifstream dash_file(std::string(LOOM_SOURCE_DIR) + "/docs/grafana-loom.json");
  std::ifstream doc_file(std::string(LOOM_SOURCE_DIR) + "/docs/metrics.md");
  REQUIRE(dash_file);
  REQUIRE(doc_file);
  std::string dash{std::istreambuf_iterator<char>(dash_file), {}};
  std::string doc{std::istreambuf_iterator<char>(doc_file), {}};
  std::size_t names = 0;
  for (std::size_t at = dash.find("loom_"); at != std::string::npos; at = dash.find("loom_", at + 1)) {
    auto end = at;
    while (end < dash.size() && (std::isalnum(static_cast<unsigned char>(dash[end])) || dash[end] == '_')) ++end;
    auto name = dash.substr(at, end - at);
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (name.size() > std::strlen(suffix) && name.ends_with(suffix) && name.find("_seconds") != std::string::npos)
        name.resize(name.size() - std::strlen(suffix));
    INFO(name);
    CHECK(doc.find("| `" + name + "` |") != std::string::npos);
    ++names;
    at = end;
  }
  CHECK(names >= 15);
}

TEST_CASE("link meters: bytes and messages per peer and direction, peers interleaved") {
  registry r;
  link_meters links{r};
  links.count("tcp://127.0.0.1:7101", true, 100);
  links.count("b", true, 10);
  links.count("tcp://127.0.0.1:7101", true, 1);
  links.count("b", false, 7);
  auto text = r.text();
  CHECK(text.find("loom_link_bytes_total{peer=\"tcp://127.0.0.1:7101\",direction=\"out\"} 101\n") != std::string::npos);
  CHECK(text.find("loom_link_messages_total{peer=\"tcp://127.0.0.1:7101\",direction=\"out\"} 2\n") != std::string::npos);
  CHECK(text.find("loom_link_bytes_total{peer=\"b\",direction=\"out\"} 10\n") != std::string::npos);
  CHECK(text.find("loom_link_bytes_total{peer=\"b\",direction=\"in\"} 7\n") != std::string::npos);
  CHECK(text.find("loom_link_messages_total{peer=\"b\",direction=\"in\"} 1\n") != std::string::npos);
}
