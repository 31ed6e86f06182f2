// examples/builder/triage_graph.hpp: configs/triage.yaml, written with the C++ builder. A test checks that
// the two give the same graph.
//
//   requests -> triage -+- chat ----> pace -> answer      (stdout)
//                       +- offline -> batch -> jobs       (out/offline_batches.jsonl)
//                       +- default -> review              (out/review.jsonl)
#pragma once

#include "loom/graph/builder.hpp"

namespace loom::examples {

inline graph::graph triage_graph() {
  using graph::config_map;
  graph::builder b("triage");
  b.base_dir("configs");  // paths as configs/triage.yaml writes them, from the repository root
  b.description("Route incoming requests by type; batch the offline ones.");
  b.node("requests", "source.file").param("path", "data/requests.jsonl").param("format", "jsonl");
  b.node("triage", "flow.router")
      .param("field", "type")
      .param("routes", config_map{{"chat", "chat"}, {"batch", "offline"}});
  b.node("pace", "flow.throttle").param("rate", 20);
  b.node("answer", "sink.stdout").param("format", "jsonl");
  b.node("batch", "flow.batch").param("size", 4);
  b.node("jobs", "sink.file").param("path", "../out/offline_batches.jsonl");
  b.node("review", "sink.file").param("path", "../out/review.jsonl");
  b.edge("requests", "triage");
  b.chain({"triage.chat", "pace", "answer"});
  b.chain({"triage.offline", "batch", "jobs"});
  b.edge("triage.default", "review");
  return b.build();
}

}  // namespace loom::examples
