// tests/runtime/lineage_tags_test.cpp: a batch's lineage tags kept as runs (runtime/local/lineage.hpp):
// the runs grow, split and join so that the tags they stand for are always those pushed, in order.
#include <doctest/doctest.h>

#include "loom/runtime/local/lineage.hpp"

using namespace loom::local;

namespace {

std::vector<lineage> tags_of(std::initializer_list<lineage> l) { return l; }

}  // namespace

TEST_CASE("tags that continue a run extend it; others start a new one") {
  lineage_tags t;
  for (std::uint64_t i = 0; i < 5; ++i) t.push_back({2, 0, 10 + i});
  t.push_back({2, 0, 20});  // the index jumps
  t.push_back({3, 0, 21});  // another in-link
  t.push_back({3, 1, 21});  // another output of the same input
  CHECK(t.size() == 8);
  REQUIRE(t.runs().size() == 4);
  CHECK(t.runs()[0] == lineage_run{2, 0, 10, 5});
  CHECK(t.runs()[1] == lineage_run{2, 0, 20, 1});
  CHECK(t.runs()[2].back() == lineage{3, 0, 21});
  t.push_run(3, 1, 22, 3);  // continues {3, 1, 21}
  CHECK(t.runs().size() == 4);
  CHECK(t.runs()[3] == lineage_run{3, 1, 21, 4});
  t.push_run(3, 1, 0, 0);  // nothing
  CHECK(t.size() == 11);
}

TEST_CASE("taking the first n tags splits the run they end in") {
  lineage_tags t;
  t.push_run(1, 0, 100, 10);
  t.push_run(1, 0, 500, 10);
  auto head = t.take_front(13);
  CHECK(head.size() == 13);
  CHECK(t.size() == 7);
  CHECK(head.runs() == std::vector<lineage_run>{{1, 0, 100, 10}, {1, 0, 500, 3}});
  CHECK(t.runs() == std::vector<lineage_run>{{1, 0, 503, 7}});
  auto all = t.take_front(7);
  CHECK(all.size() == 7);
  CHECK(t.empty());
  CHECK(t.runs().empty());
  // Back together: the tags as they were.
  head.append(all);
  CHECK(head.runs() == std::vector<lineage_run>{{1, 0, 100, 10}, {1, 0, 500, 10}});
}

TEST_CASE("truncate keeps the first n tags, slice copies a range") {
  lineage_tags t;
  t.push_run(0, 0, 0, 4);
  t.push_back({0, 3, 9});
  t.push_run(0, 0, 50, 4);
  auto s = t.slice(2, 7);
  CHECK(s.expand() == tags_of({{0, 0, 2}, {0, 0, 3}, {0, 3, 9}, {0, 0, 50}, {0, 0, 51}}));
  CHECK(t.slice(0, 0).empty());
  CHECK(t.slice(5, 9).expand() == tags_of({{0, 0, 50}, {0, 0, 51}, {0, 0, 52}, {0, 0, 53}}));
  t.truncate(6);
  CHECK(t.size() == 6);
  CHECK(t.runs() == std::vector<lineage_run>{{0, 0, 0, 4}, {0, 3, 9, 1}, {0, 0, 50, 1}});
  t.truncate(4);
  CHECK(t.runs() == std::vector<lineage_run>{{0, 0, 0, 4}});
  t.truncate(0);
  CHECK(t.empty());
  CHECK(t.runs().empty());
}

TEST_CASE("joined batches' runs merge where they continue, and compare by the tags they stand for") {
  lineage_tags a{{4, 0, 1}, {4, 0, 2}};
  lineage_tags b{{4, 0, 3}};
  a.append(b);
  CHECK(a.runs().size() == 1);
  CHECK(a == lineage_tags{{4, 0, 1}, {4, 0, 2}, {4, 0, 3}});
  CHECK(!(a == lineage_tags{{4, 0, 1}, {4, 0, 2}, {4, 0, 4}}));
}
