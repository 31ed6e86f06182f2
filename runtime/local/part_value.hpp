// runtime/local/part_value.hpp: an instance's part of a snapshot (snapshot.hpp) as one loom value, the form
// in which a worker sends its parts to the driver of a cluster run and the driver sends them back to the
// workers of a resumed one (transport::control::snapshot_part; docs/durability.md, "Cluster runs"). The
// value is a map; every field is checked on the way back against the instance's plan, so a part that does not
// fit (another graph, a damaged message) is refused with one sentence, never restored wrongly.
#pragma once

#include <memory>
#include <string>

#include "loom/runtime/local/plan.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/value.hpp"

namespace loom::local {

value to_value(const instance_part& p);

// The part of instance `plan`, or null with `error` set (naming the field).
std::shared_ptr<instance_part> part_from_value(const value& v, const instance_plan& plan, std::string& error);

}  // namespace loom::local
