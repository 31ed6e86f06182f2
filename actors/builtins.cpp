// actors/builtins.cpp: registers every built-in kind, one line each. A new kind adds its line here and its
// declaration to kinds.hpp.
#include "loom/actors/builtins.hpp"

#include "loom/actors/kinds.hpp"

namespace loom::actors {

void register_builtins(registry& r) {
  r.add(sequence_kind());
  r.add(value_kind());
  r.add(blob_kind());
  r.add(file_source_kind());

  r.add(forward_kind());
  r.add(batch_kind());
  r.add(gather_kind());
  r.add(router_kind());
  r.add(throttle_kind());
  r.add(jq_kind());
  r.add(call_kind());
  r.add(vote_kind());

  r.add(file_sink_kind());
  r.add(stdout_kind());
  r.add(count_kind());

  r.add(calculator_kind());
  r.add(retrieve_kind());
  r.add(monte_carlo_kind());
  r.add(mcp_kind());

  r.add(gemm_kind());

  r.add(llm_agent_kind());

  r.add(approve_kind());
}

}  // namespace loom::actors
