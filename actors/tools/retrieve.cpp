// tool.retrieve: finds the passages of a corpus that best match a query (SQLite FTS5, bm25 ranking).
//   params:  corpus (string, required: a folder of .txt/.md files, one passage per paragraph, or a .jsonl file
//            of {text, source?}), top_k (integer, default 3, 1..50)
//   call:    query (string, required), top_k (integer, optional, 1..50)
//   reply:   {query, passages: [{text, source, score}]} best first; score = -bm25 (higher is better)
// The index is built in on_start; a missing corpus fails the start, naming the path. Any query text is safe:
// it becomes quoted words joined by OR, so punctuation never reaches FTS5's query syntax.
#include <memory>
#include <optional>

#include "loom/actors/kinds.hpp"
#include "loom/actors/tools/fts_index.hpp"
#include "loom/runtime/schema.hpp"

namespace loom::actors {
namespace {

graph::call_spec retrieve_call() {
  using graph::param_spec;
  return {"Searches the knowledge base and returns the passages that best match the query, best first, with "
          "their source. Use short keyword queries.",
          {param_spec::string("query", "what to look for, in a few keywords").require(),
           param_spec::integer("top_k", "how many passages to return (default: the node's top_k)").at_least(1).at_most(50)}};
}

class retrieve final : public node {
 public:
  explicit retrieve(const params& p)
      : corpus_(p.get_string("corpus")), top_k_(static_cast<std::size_t>(p.get_int("top_k"))) {}

  void on_start(context&) override {
    index_.emplace();
    for (const auto& ps : read_corpus(corpus_)) index_->add(ps.text, ps.source);
  }

  value on_call(context& ctx, const value& request) override {
    if (!index_) on_start(ctx);
    value req = check_call_request(retrieve_call(), request);
    const std::string& query = req.find("query")->as_string();
    const value* k = req.find("top_k");
    value_list passages;
    for (auto& p : index_->search(query, k ? static_cast<std::size_t>(k->as_int()) : top_k_))
      passages.emplace_back(value_map{{"text", std::move(p.text)}, {"source", std::move(p.source)}, {"score", p.score}});
    return value{value_map{{"query", query}, {"passages", std::move(passages)}}};
  }

 private:
  std::string corpus_;
  std::size_t top_k_;
  std::optional<fts_index> index_;
};

}  // namespace

kind_def retrieve_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "tool.retrieve";
  s.doc = "a tool that finds the passages of a text corpus best matching a query (SQLite FTS5, bm25)";
  s.params = {param_spec::string("corpus", "a folder of .txt/.md files (a passage per paragraph) or a .jsonl file "
                                           "of {text, source?} (relative: to the graph file's folder)").require().file_path(),
              param_spec::integer("top_k", "passages per query unless the call says").def(3).at_least(1).at_most(50)};
  s.call = retrieve_call();
  return {std::move(s), [](const node_init& init) { return std::make_unique<retrieve>(init.params); }};
}

}  // namespace loom::actors
