// tests/cli/data_configs_test.cpp: the data configs as a user runs them with the `loom` binary:
// configs/documents.yaml (route 200 records, price invoices with a tool call per record, batch reports,
// count the rest) keeps every record's numbers exactly; configs/vote.yaml decides each order's total from
// three differently built branches and reports the orders where one branch disagrees.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::run_process;

namespace {

fs::path fresh_dir(const std::string& name) { return loom::test::config_work_dir("data-" + name); }

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("the document pipeline prices each invoice with a tool call and keeps every number exact" *
          doctest::timeout(60)) {
  auto dir = fresh_dir("documents");
  process_options o;
  o.cwd = dir.string();
  auto r = run_process({loom_binary(), "run", "configs/documents.yaml"}, o);
  INFO(r.err);
  REQUIRE(r.status == 0);  // sink.count `rest` expects its 80 memos and scans
  std::vector<std::string> invoices, reports;
  for (const auto& line : lines_of(dir / "configs/data/documents.jsonl")) {
    auto type = nlohmann::json::parse(line)["type"];
    if (type == "invoice") invoices.push_back(line);
    if (type == "report") reports.push_back(line);
  }
  REQUIRE(invoices.size() == 80);
  auto priced = lines_of(dir / "out/priced.jsonl");
  REQUIRE(priced.size() == invoices.size());
  for (std::size_t i = 0; i < priced.size(); ++i) {
    CAPTURE(priced[i]);
    // In order (ordered: true), and the record's own text unchanged: a 19-digit id and 1/3 as they came.
    std::string head = invoices[i].substr(0, invoices[i].size() - 1) + ",\"price\":";
    CHECK(priced[i].rfind(head, 0) == 0);
    auto j = nlohmann::json::parse(priced[i]);
    double want = j["pages"].get<double>() * 0.25 + j["fee"].get<double>();
    CHECK(j["price"]["result"].get<double>() == doctest::Approx(want).epsilon(1e-12));
  }
  CHECK(priced.front().find("\"id\":1234567890123456789,") != std::string::npos);
  CHECK(priced.front().find("\"ratio\":0.3333333333333333,") != std::string::npos);
  auto batches = lines_of(dir / "out/report_batches.jsonl");
  CHECK(batches.size() == 4);  // 40 reports in batches of 10
  std::size_t batched = 0;
  for (const auto& b : batches) batched += nlohmann::json::parse(b).size();
  CHECK(batched == reports.size());
  CHECK(lines_of(dir / "out/price_errors.jsonl").empty());
  fs::remove_all(dir);
}

TEST_CASE("the vote decides each order from three branches and reports where one disagrees" * doctest::timeout(60)) {
  auto dir = fresh_dir("vote");
  process_options o;
  o.cwd = dir.string();
  auto r = run_process({loom_binary(), "run", "configs/vote.yaml"}, o);
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::map<std::int64_t, nlohmann::json> orders;
  for (const auto& line : lines_of(dir / "configs/data/orders.jsonl")) {
    auto j = nlohmann::json::parse(line);
    orders[j["id"].get<std::int64_t>()] = j;
  }
  auto totals = lines_of(dir / "out/totals.jsonl");
  REQUIRE(totals.size() == orders.size());
  std::set<std::int64_t> seen;
  for (const auto& line : totals) {
    auto j = nlohmann::json::parse(line);
    auto id = j["id"].get<std::int64_t>();
    seen.insert(id);
    const auto& in = orders.at(id);
    double want = in["qty"].get<double>() * in["unit_price"].get<double>() * (1 - in["discount"].get<double>());
    CAPTURE(line);
    CHECK(j["total"].get<double>() == doctest::Approx(want).epsilon(1e-9));  // the coupon is outvoted
  }
  CHECK(seen.size() == orders.size());
  auto split = lines_of(dir / "out/disagreements.jsonl");
  std::set<std::int64_t> split_ids;
  for (const auto& line : split) {
    auto j = nlohmann::json::parse(line);
    CAPTURE(line);
    split_ids.insert(j["key"].get<std::int64_t>());
    CHECK(j["decided"] == true);
    REQUIRE(j["answers"].size() == 3);
    CHECK(j["answers"][1]["input"] == "b");  // the jq branch took the coupon off
    CHECK(j["answers"][1]["value"]["total"].get<double>() ==
          doctest::Approx(j["decision"]["total"].get<double>() - 2).epsilon(1e-9));
  }
  std::set<std::int64_t> coupons;
  for (const auto& [id, in] : orders)
    if (in.contains("coupon")) coupons.insert(id);
  CHECK(coupons.size() == 4);
  CHECK(split_ids == coupons);
  fs::remove_all(dir);
}

TEST_CASE("loom validate warns at a vote whose `disagree` is not connected; without quorum the run fails" *
          doctest::timeout(60)) {
  auto dir = fresh_dir("vote-warn");
  auto graph = (dir / "vote.yaml").string();
  std::ofstream(graph) << "graph: v\nnodes:\n  a: {kind: source.value, params: {value: 1}}\n"
                          "  b: {kind: source.value, params: {value: 2}}\n"
                          "  vote:\n    kind: flow.vote\n"
                          "  out: {kind: sink.count}\nedges:\n  - a -> vote.a\n  - b -> vote.b\n  - vote -> out\n";
  auto v = run_process({loom_binary(), "validate", graph});
  INFO(v.err);
  CHECK(v.status == 0);
  CHECK(v.err.find(graph + ":5:3: warning: node `vote` (flow.vote): output `disagree`") != std::string::npos);
  auto r = run_process({loom_binary(), "run", graph});
  CHECK(r.status == 1);
  CHECK(r.err.find("flow.vote `vote`: no quorum (2 of 2 must agree)") != std::string::npos);
  fs::remove_all(dir);
}
