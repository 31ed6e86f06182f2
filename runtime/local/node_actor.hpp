// runtime/local/node_actor.hpp: the CAF actor that hosts one node instance: a stateful actor whose state is
// the node host (node_actor.cpp), made of an inbox (what arrived, credits back), an outbox (links, credits,
// attempts), a call table and an explicit lifecycle. It calls the node one message at a time and never
// lets the queue of any edge exceed its capacity.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <memory>

#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/local/run_state.hpp"

namespace loom::local {

class node_host;
struct node_state {
  node_state();
  ~node_state();
  std::unique_ptr<node_host> host;
};
using node_actor = caf::stateful_actor<node_state>;

caf::behavior node_actor_behavior(node_actor* self, std::shared_ptr<const deployment> plan,
                                  std::shared_ptr<run_state> run, std::uint32_t index);

}  // namespace loom::local
