// cli/runs_admin.hpp: the verbs of `loom runs DIR` that change state (docs/durability.md, "Fork, pin,
// drop"): --fork ID --to DIR2 [--set node.param=value ...] starts a new run state from one snapshot with
// other params, --pin ID and --unpin ID keep a snapshot from pruning or give it back to it, --drop deletes
// the state of a run that is not live. Without a verb, `loom runs DIR` shows the run (cli/state.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.hpp"

namespace CLI {
class App;
}

namespace loom::cli {

struct runs_admin_options {
  std::int64_t fork = 0;            // --fork SNAPSHOT_ID (ids start at 1; 0: not given)
  std::string to;                   // --to DIR2
  std::vector<std::string> sets;    // --set node.param=value, with --fork
  std::int64_t pin = 0, unpin = 0;  // --pin ID, --unpin ID
  bool drop = false;                // --drop
  bool any() const { return fork > 0 || pin > 0 || unpin > 0 || drop; }
};

// Registers the verbs on `loom runs`: one at a time, --to with --fork (and it needs one), --set only with
// --fork.
void add_runs_admin_options(CLI::App& runs, runs_admin_options& o);

// Runs the verb given; exit codes as cli/commands.hpp (2: refused, with the reason on stderr).
int runs_admin_command(const common_options& common, const std::string& dir, const runs_admin_options& o);

// `--fork`: the sets of the new run: `old` with `added` applied, a later one replacing an earlier one of the
// same node.param (the order kept: old ones that stay, then the added ones).
std::vector<std::string> merge_sets(const std::vector<std::string>& old,
                                    const std::vector<std::string>& added);

}  // namespace loom::cli
