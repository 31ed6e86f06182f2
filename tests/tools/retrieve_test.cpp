// tests/tools/retrieve_test.cpp: tool.retrieve ranks the passage holding the query's words first, takes any
// punctuation in a query without an error, honours top_k, reads folders and .jsonl files, and names a missing
// corpus. It also loads the shipped corpus configs/data/food_truck/.
#include <doctest/doctest.h>

#include "loom/actors/tools/fts_index.hpp"
#include "tests/tools/tool_call.hpp"

using namespace loom;

namespace {

const std::string food_truck = std::string(LOOM_SOURCE_DIR) + "/configs/data/food_truck";

std::vector<value> passages(const value& reply) { return reply.find("passages")->as_list(); }

}  // namespace

TEST_CASE("retrieve ranks the passage with the query's words first" * doctest::timeout(10)) {
  test::temp_dir dir;
  dir.write("a.md", "# Animals\n\nThe cat sat on the mat.\n\nDogs bark at the mailman.\nThey are loud.\n");
  dir.write("b.txt", "Parrots can talk.\n\n\n\nThe quick brown fox jumps over the lazy dog.\n");
  test::running n("tool.retrieve", {{"corpus", dir.file("")}});
  n.start();
  auto r = test::call_tool(n, "tool.retrieve", {{"query", "fox jumps"}});
  CHECK(r.find("query")->as_string() == "fox jumps");
  auto ps = passages(r);
  REQUIRE(!ps.empty());
  CHECK(ps[0].find("text")->as_string() == "The quick brown fox jumps over the lazy dog.");
  CHECK(ps[0].find("source")->as_string() == "b.txt");
  CHECK(ps[0].find("score")->as_float() > 0);
  // A paragraph keeps its lines; a heading alone is not a passage.
  auto dogs = passages(test::call_tool(n, "tool.retrieve", {{"query", "mailman"}}));
  REQUIRE(dogs.size() == 1);
  CHECK(dogs[0].find("text")->as_string() == "Dogs bark at the mailman.\nThey are loud.");
  CHECK(passages(test::call_tool(n, "tool.retrieve", {{"query", "animals"}})).empty());
}

TEST_CASE("retrieve takes punctuation-heavy queries without an error" * doctest::timeout(10)) {
  test::temp_dir dir;
  dir.write("c.txt", "Permits in Paris take months.\n\nMenus should be short.\n");
  test::running n("tool.retrieve", {{"corpus", dir.file("")}});
  n.start();
  for (const char* q : {"permits?!", "\"permits\" AND (paris OR", "NEAR(permits* ^ -paris)", "'; DROP TABLE t; --",
                        "{}[]:*\"\"", "", "   ", "c'est l'été à Paris", "permits\\"}) {
    CAPTURE(q);
    value r;
    CHECK_NOTHROW(r = test::call_tool(n, "tool.retrieve", {{"query", q}}));
  }
  auto ps = passages(test::call_tool(n, "tool.retrieve", {{"query", "\"permits\" AND (paris OR"}}));
  REQUIRE(!ps.empty());
  CHECK(ps[0].find("text")->as_string() == "Permits in Paris take months.");
  CHECK(passages(test::call_tool(n, "tool.retrieve", {{"query", "?!"}})).empty());
  CHECK(actors::fts_match_expression("permits? (Paris)") == "\"permits\" OR \"Paris\"");
}

TEST_CASE("retrieve returns top_k passages: the node's, or the call's" * doctest::timeout(10)) {
  test::running n("tool.retrieve", {{"corpus", food_truck}, {"top_k", 2}});
  n.start();
  CHECK(passages(test::call_tool(n, "tool.retrieve", {{"query", "truck euros"}})).size() == 2);
  CHECK(passages(test::call_tool(n, "tool.retrieve", {{"query", "truck euros"}, {"top_k", 5}})).size() == 5);
  CHECK_THROWS_WITH_AS(test::call_tool(n, "tool.retrieve", {{"query", "truck"}, {"top_k", 51}}),
                       "argument `top_k`: 51 is above the maximum 50", std::invalid_argument);
}

TEST_CASE("retrieve finds the food truck corpus's passage on permits" * doctest::timeout(10)) {
  test::running n("tool.retrieve", {{"corpus", food_truck}});
  n.start();
  auto ps = passages(test::call_tool(n, "tool.retrieve", {{"query", "What permit do I need to sell on the street in Paris?"}}));
  REQUIRE(ps.size() == 3);
  CHECK(ps[0].find("source")->as_string() == "permits.md");
  auto costs = passages(test::call_tool(n, "tool.retrieve", {{"query", "monthly fixed costs insurance fuel"}}));
  REQUIRE(!costs.empty());
  CHECK(costs[0].find("source")->as_string() == "costs.md");
  for (std::size_t i = 1; i < costs.size(); ++i)
    CHECK(costs[i - 1].find("score")->as_float() >= costs[i].find("score")->as_float());
}

TEST_CASE("retrieve reads a .jsonl corpus, its source defaulting to file:line" * doctest::timeout(10)) {
  test::temp_dir dir;
  auto path = dir.write("k.jsonl", "{\"text\": \"GPUs run kernels\", \"source\": \"gpu.md\"}\n\n{\"text\": \"actors send messages\"}\n");
  test::running n("tool.retrieve", {{"corpus", path}});
  n.start();
  auto ps = passages(test::call_tool(n, "tool.retrieve", {{"query", "messages"}}));
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].find("source")->as_string() == "k.jsonl:3");
  CHECK(passages(test::call_tool(n, "tool.retrieve", {{"query", "kernels"}}))[0].find("source")->as_string() == "gpu.md");
  auto bad = dir.write("bad.jsonl", "{\"text\": \"fine\"}\n{\"txt\": 1}\n");
  test::running b("tool.retrieve", {{"corpus", bad}});
  CHECK_THROWS_WITH_AS(b.start(), doctest::Contains("bad.jsonl:2: expected a JSON object with a string `text`"),
                       std::runtime_error);
}

TEST_CASE("retrieve fails at start naming a corpus that does not exist" * doctest::timeout(10)) {
  test::running n("tool.retrieve", {{"corpus", "/no/such/corpus"}});
  CHECK_THROWS_WITH_AS(n.start(), "retrieve: corpus /no/such/corpus does not exist", std::runtime_error);
}
