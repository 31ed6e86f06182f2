// suggest() and closest(): did-you-mean hints by edit distance, and family-less kind names.
#include <doctest/doctest.h>

#include "loom/graph/diagnostics.hpp"

using namespace loom::graph;

TEST_CASE("closest finds near misses within a third of the word's length") {
  std::vector<std::string> kinds{"flow.batch", "flow.forward", "sink.count", "source.sequence"};
  CHECK(closest("flow.forwrd", kinds) == "flow.forward");
  CHECK(closest("source.seqeunce", kinds) == "source.sequence");  // a transposition is one edit
  CHECK(closest("sequence", kinds) == "source.sequence");          // the family left out
  CHECK(closest("sink.cuont", kinds) == "sink.count");
  CHECK(closest("banana", kinds).empty());
  CHECK(closest("cont", {"count", "start"}) == "count");
  CHECK(closest("x", {"y"}) == "y");  // distance 1 is always close
}

TEST_CASE("suggest names the closest candidate or lists them all") {
  CHECK(suggest("edgs", {"graph", "nodes", "edges"}) == "did you mean `edges`?");
  CHECK(suggest("zzz", {"graph", "nodes"}) == "expected one of: graph, nodes");
  CHECK(suggest("zzz", {}).empty());
}

TEST_CASE("diagnostics print sorted by file, line and column with hints") {
  auto file = std::make_shared<const std::string>("g.yaml");
  diagnostics d;
  d.error({file, 9, 1}, "late");
  d.warning({file, 2, 5}, "early", "a hint");
  d.error({file, 2, 3}, "earliest");
  CHECK(d.error_count() == 2);
  CHECK(d.has_errors());
  CHECK(d.str() == "g.yaml:2:3: error: earliest\ng.yaml:2:5: warning: early\n  hint: a hint\ng.yaml:9:1: error: late\n");
  CHECK(location{file, 0, 0}.str() == "g.yaml");
  CHECK(location{file, 4, 0}.str() == "g.yaml:4");
  CHECK(location{}.str() == "<unknown>");
}
