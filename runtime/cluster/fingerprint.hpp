// runtime/cluster/fingerprint.hpp: what the driver and a worker must agree on before a run. The driver's
// deploy carries a description of the expanded graph (every instance, link and capacity) and of its kind
// kinds it uses (each kind, its ports, params and their defaults); a worker makes its own from the same YAML
// and its own kinds and refuses the run naming the first thing that differs (a plugin missing or of another
// build on one host would otherwise change link numbering silently).
#pragma once

#include <optional>
#include <string>

#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/transport/stand_in.hpp"

namespace loom::cluster {

// One line per kind the deployment uses, sorted by name: "kind flow.throttle in=[in] out=[out] params=[...] ...".
// Only those: a program that embeds loom may have kinds of its own that no worker knows and no graph of
// the run uses.
std::string describe_kinds(const registry& kinds, const local::deployment& d);
// The kinds the graph's nodes name that this worker does not have, as a sentence for a refusal that says
// where the driver's come from ("... which the driver has from python module acme.kinds ..."), read from
// the driver's description; nullopt when this worker has them all.
std::optional<std::string> lacking_kinds(const std::string& driver_kinds, const graph::graph& g,
                                         const registry& kinds);
// One line per instance: "instance 3 pace[0] flow.throttle in=[0<-1.0 cap 64] out=[[[4.0 cap 64]]] ...".
std::string describe_deployment(const local::deployment& d);

// FNV-1a 64 of a description, in hex with the line count: "16 lines 9f0c...". Short enough for a log.
std::string fingerprint(const std::string& description);

// The first line that differs between the driver's description and ours, as a sentence for a refusal
// ("the driver has `kind x ...`, this worker has `kind x ...`"); nullopt when they are equal.
std::optional<std::string> first_difference(const std::string& driver, const std::string& worker,
                                            const std::string& what);

// Every stream of the run and what may travel on it (link ids and capacities, calls and replies), for the
// receive boundary (transport::receiver). Instance keys and host names are left for the caller to fill.
transport::run_rules make_rules(const local::deployment& d);

// Every link whose producer and consumer the plan puts on two hosts gets a capacity of at least `window`
// (its window across the network: values in flight; docs/cluster.md, "Windows across hosts"), unless the
// graph file sets its edge's capacity (out_edge_plan::sized); links inside one host keep their edge's. Every host of a run applies it to the same expansion with the driver's
// window, after comparing the expansions, so both ends of a link and the receive rules agree on it.
// Returns how many links it widened. `instance_host`: instance index -> host index. Each such link (widened
// or wider already) also gets the byte budget `bytes` on both ends (out_link_plan::bytes), so its window
// bounds the values in flight and their bytes: many small values fill the window, a few large ones the
// budget. A window of 0 changes nothing.
inline constexpr std::int64_t remote_link_bytes = std::int64_t{64} << 20;
std::size_t widen_remote_links(local::deployment& d, const std::vector<std::uint32_t>& instance_host,
                               std::uint32_t window, std::int64_t bytes = remote_link_bytes);

// What joins host `a` to host `b` in a run, for a message about a lost link between them: the edges with
// one end on each (their labels, "numbers.out -> pace.in"), then the calls ("ask -> slow (calls)"), each
// once, in instance order; empty when nothing does. `instance_host`: instance index -> host index.
std::string links_between(const local::deployment& d, const std::vector<std::uint32_t>& instance_host,
                          std::uint32_t a, std::uint32_t b);

}  // namespace loom::cluster
