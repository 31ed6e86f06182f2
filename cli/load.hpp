// cli/load.hpp: what every subcommand does first: the registry (built-ins and --plugin libraries) and the
// graph (loaded, overridden with --set, validated, defaults filled), printing every error with its place.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/local/snapshot.hpp"
#include "loom/runtime/registry.hpp"

namespace loom::observe {
class tracer;
}

namespace loom::cli {

// nullopt (the error printed) when a plugin cannot be loaded.
std::optional<registry> make_registry(const common_options& common);

// Prints diagnostics to stderr, with a count when there are several errors.
void print_diagnostics(const graph::diagnostics& diags, const std::string& file);

// nullopt when the file has errors (all printed).
std::optional<graph::graph> load(const std::string& file, const registry& kinds,
                                 const std::vector<std::string>& sets = {});

void print_error(const std::string& text);

// SIGINT and SIGTERM set a flag (a second one exits at once with status 130).
void install_sigint();
bool interrupted_by_user();
// SIGHUP (salloc's word when the allocation is revoked) counts as an interrupt too.
void install_sighup();

// Prints the outcome and the per-node table (stderr) and returns the exit status.
int report_run(const local::run_report& report, const std::string& graph, bool quiet);

class durable_run;

// `loom run FILE --cluster C`: plan, deploy to the workers, run, report.
// `trace`: the run's tracer (--trace, --otlp), or null. `durable` (may be empty): called once the hosts and
// the plan are known, it gives where the driver keeps the run's snapshots (null: the run does not start,
// the reason printed); `restore` (may be null): a resumed run's snapshot, deployed with the instances.
int run_cluster(const graph::graph& g, const registry& kinds, const run_options& options,
                const std::shared_ptr<observe::tracer>& trace, const std::function<durable_run*()>& durable = {},
                std::shared_ptr<const local::snapshot> restore = nullptr);

}  // namespace loom::cli
