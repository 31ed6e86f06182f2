// tests/flagship/flagship_test.cpp: the flagship graph end to end. `loom run configs/food_truck.yaml` runs in a
// fresh working directory (a copy of configs/ and an empty out/) and its launch package is checked against the
// real tools: the finance numbers against the Monte Carlo kernel's CPU reference, the break-even against the
// arithmetic, the market section against the corpus. The C++ builder twin (loom_example_food_truck) must write
// the same file byte for byte. Pointing the agents at a server where none listens must fail the run, naming
// the planner: the switch to a real model is live.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "loom/kernels/monte_carlo/monte_carlo.hpp"
#include "tests/cli/process.hpp"

namespace fs = std::filesystem;

namespace {

using loom::test::process_options;
using loom::test::process_result;
using loom::test::run_process;

const std::string package_file = "out/launch_package.md";

// A fresh working directory with a copy of configs/ and no out/, as a fresh checkout has none (the sinks
// make it); removed when the test ends.
class workdir {
 public:
  workdir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("loom_flagship_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
    fs::copy(fs::path(LOOM_SOURCE_DIR) / "configs", path_ / "configs", fs::copy_options::recursive);
  }
  ~workdir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  workdir(const workdir&) = delete;
  workdir& operator=(const workdir&) = delete;
  std::string str() const { return path_.string(); }
  fs::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Sets (or, given nullptr, unsets) an environment variable for one scope; the children inherit it.
class scoped_env {
 public:
  scoped_env(const char* name, const char* v) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (v) ::setenv(name, v, 1);
    else ::unsetenv(name);
  }
  ~scoped_env() {
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

process_result run_in(const workdir& dir, const std::vector<std::string>& argv) {
  process_options o;
  o.cwd = dir.str();
  o.deadline = std::chrono::milliseconds(120000);
  return run_process(argv, o);
}

std::string example_binary() { return std::string(LOOM_BINARY_DIR) + "/bin/loom_example_food_truck"; }

// The text of section `## name` (up to the next `\n## ` or the end); empty when absent.
std::string section(const std::string& doc, const std::string& name) {
  auto head = "\n## " + name + "\n";
  auto at = doc.find(head);
  if (at == std::string::npos) return "";
  at += head.size();
  auto end = doc.find("\n## ", at);
  return doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The number after the first `after` at or past `from`, up to the next space: `median 12345 EUR` -> 12345.
// Fails the test when there is none.
long long number_after(const std::string& text, const std::string& after, std::size_t from = 0,
                       std::size_t* next = nullptr) {
  auto at = text.find(after, from);
  REQUIRE_MESSAGE(at != std::string::npos, "no `" << after << "` in: " << text);
  at += after.size();
  auto end = text.find(' ', at);
  REQUIRE(end != std::string::npos);
  std::string digits = text.substr(at, end - at);
  REQUIRE_MESSAGE(!digits.empty(), "no number after `" << after << "` in: " << text);
  std::size_t used = 0;
  long long n = std::stoll(digits, &used);
  REQUIRE_MESSAGE(used == digits.size(), "`" << digits << "` is not an integer");
  if (next) *next = end;
  return n;
}

std::string collapse_spaces(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// The finance agent's call in configs/food_truck.yaml, as tool.monte_carlo maps it to forecast_params.
loom::kernels::forecast_params finance_call() {
  loom::kernels::forecast_params p;
  p.customers_per_day = 120;
  p.customers_sd = 30;
  p.avg_ticket = 12.5;
  p.ticket_sd = 2.5;
  p.fixed_costs_per_month = 6000;
  p.cost_of_goods = 0.32;
  p.days = 300;
  p.samples = 200000;
  p.seed = 7;
  return p;
}

// The revenue and profit medians quoted by the finance section.
struct medians {
  long long revenue = 0, profit = 0;
};

medians quoted_medians(const std::string& finance) {
  auto rev = finance.find("- revenue:");
  auto prof = finance.find("- profit");
  REQUIRE_MESSAGE(rev != std::string::npos, finance);
  REQUIRE_MESSAGE(prof != std::string::npos, finance);
  REQUIRE(rev < prof);
  medians m;
  m.revenue = number_after(finance, "median ", rev);
  m.profit = number_after(finance, "median ", prof);
  return m;
}

// A TCP port on 127.0.0.1 with nothing listening: bound by the kernel's choice, then closed.
int free_local_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_SUITE("flagship: configs/food_truck.yaml" * doctest::timeout(300)) {
  TEST_CASE("loom run writes the launch package from the real tools, and the C++ twin writes the same file") {
    scoped_env no_server("LOOM_LLM_BASE_URL", nullptr);
    scoped_env no_model("LOOM_LLM_MODEL", nullptr);

    workdir cli_dir;
    REQUIRE_FALSE(fs::exists(cli_dir / "out"));  // as in a fresh checkout
    auto r = run_in(cli_dir, {loom::test::loom_binary(), "run", "configs/food_truck.yaml"});
    INFO("stdout: " << r.out);
    INFO("stderr: " << r.err);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.status == 0);
    REQUIRE(fs::exists(cli_dir / package_file));
    const std::string doc = read_file(cli_dir / package_file);
    INFO("package:\n" << doc);

    CHECK(doc.rfind("# Food truck launch package\n", 0) == 0);

    // The five sections, in the gather's order (sorted by role: concept designer, financial planner, ...).
    const std::vector<std::string> names = {"design", "finance", "market", "marketing", "ops"};
    std::size_t last = 0;
    for (const auto& n : names) {
      auto at = doc.find("\n## " + n + "\n");
      REQUIRE_MESSAGE(at != std::string::npos, "no section `## " << n << "`");
      CHECK_MESSAGE(at > last, "section `## " << n << "` is out of order");
      last = at;
      CHECK_FALSE(section(doc, n).empty());
    }

    {  // finance: the medians are the Monte Carlo kernel's
      const std::string finance = section(doc, "finance");
      auto quoted = quoted_medians(finance);
      CHECK(finance.find("200000 Monte Carlo runs") != std::string::npos);
      auto expect = loom::kernels::forecast_cpu(finance_call());
      REQUIRE(expect.samples == 200000);
      if (finance.find("Monte Carlo runs on cpu;") != std::string::npos) {
        CHECK(quoted.revenue == std::llround(expect.revenue.p50));
        CHECK(quoted.profit == std::llround(expect.profit.p50));
      } else {
        // The CUDA path drew its own normals: it agrees statistically; the CPU path is checked exactly below.
        auto m = loom::kernels::forecast_analytic(finance_call());
        CHECK(std::abs(static_cast<double>(quoted.revenue) - expect.revenue.p50) < 0.02 * m.revenue_sd);
        workdir cpu_dir;
        auto c = run_in(cpu_dir, {loom::test::loom_binary(), "run", "configs/food_truck.yaml", "--set",
                                  "forecast.device=cpu"});
        INFO("stderr (device=cpu): " << c.err);
        REQUIRE(c.status == 0);
        auto cpu_finance = section(read_file(cpu_dir / package_file), "finance");
        REQUIRE(cpu_finance.find("Monte Carlo runs on cpu;") != std::string::npos);
        auto cpu_quoted = quoted_medians(cpu_finance);
        CHECK(cpu_quoted.revenue == std::llround(expect.revenue.p50));
        CHECK(cpu_quoted.profit == std::llround(expect.profit.p50));
      }
    }

    {  // ops: the break-even is the calculator's
      const std::string ops = section(doc, "ops");
      auto expect = std::llround(6000.0 / (12.5 * 0.68) / 25.0);
      CHECK(expect == 28);
      CHECK(number_after(ops, "Break-even: ") == expect);
    }

    {  // market: quotes a passage of configs/data/food_truck/locations.md
      const std::string market = section(doc, "market");
      const std::string corpus =
          collapse_spaces(read_file(fs::path(LOOM_SOURCE_DIR) / "configs/data/food_truck/locations.md"));
      const std::string lead = "Where to trade: ";
      auto at = market.find(lead);
      REQUIRE_MESSAGE(at != std::string::npos, market);
      at += lead.size();
      auto end = market.find(" (source: ", at);
      REQUIRE(end != std::string::npos);
      const std::string passage = market.substr(at, end - at);
      CHECK(passage.size() > 40);
      CHECK_MESSAGE(corpus.find(collapse_spaces(passage)) != std::string::npos,
                    "not in locations.md: " << passage);
      CHECK(market.find("(source: locations.md)") != std::string::npos);
    }

    {  // the builder twin writes the same file
      workdir example_dir;
      auto e = run_in(example_dir, {example_binary()});
      INFO("example stdout: " << e.out);
      INFO("example stderr: " << e.err);
      REQUIRE_FALSE(e.timed_out);
      REQUIRE(e.status == 0);
      CHECK(e.out.find("launch package: out/launch_package.md") != std::string::npos);
      REQUIRE(fs::exists(example_dir / package_file));
      CHECK(read_file(example_dir / package_file) == doc);
    }
  }

  TEST_CASE("LOOM_LLM_BASE_URL switches the agents to a server: with none listening, the run fails at the planner") {
    const std::string url = "http://127.0.0.1:" + std::to_string(free_local_port()) + "/v1";
    scoped_env server("LOOM_LLM_BASE_URL", url.c_str());
    workdir dir;
    auto r = run_in(dir, {loom::test::loom_binary(), "run", "configs/food_truck.yaml", "--set", "planner.retries=0"});
    INFO("url: " << url);
    INFO("stdout: " << r.out);
    INFO("stderr: " << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.status == 1);
    // The failure line itself must name the node (the summary table below it names every node).
    auto at = r.err.find("loom: run `food-truck` failed");
    REQUIRE(at != std::string::npos);
    const std::string failure = r.err.substr(at, r.err.find('\n', at) - at);
    INFO("failure: " << failure);
    CHECK(failure.find("`planner`") != std::string::npos);
    CHECK(failure.find("could not connect") != std::string::npos);
    CHECK(failure.find("after 1 attempt") != std::string::npos);  // planner.retries=0 took
    // The sink opens its file at the start; nothing reached it.
    if (fs::exists(dir / package_file)) CHECK(read_file(dir / package_file).empty());
  }
}
