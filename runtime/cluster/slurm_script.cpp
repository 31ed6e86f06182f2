// runtime/cluster/slurm_script.cpp: `loom slurm FILE`: the sbatch script that runs a graph on as many
// identical tasks as its plan needs (the fewest on which the planner finds a plan), with the CPUs, GPUs,
// memory, partition, nodes and features its nodes ask for as #SBATCH lines.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "loom/runtime/cluster/slurm.hpp"
#include "loom/runtime/cluster/slurm_detail.hpp"

namespace loom::cluster::slurm {

script make_script(const graph::graph& g, const graph::kind_catalog& kinds, const script_request& r) {
  script s;
  double cpus = 0;
  std::uint64_t memory = 0;
  int gpus = 0;
  std::size_t instances = 0;
  std::vector<std::pair<std::string, std::string>> labels;
  std::string partition, nodelist;
  std::set<std::string> features;
  for (const auto& n : g.nodes) {
    auto need = placement::needs_of(n, kinds);
    cpus = std::max(cpus, need.cpus);
    memory = std::max(memory, need.memory);
    gpus = std::max(gpus, need.gpus);
    instances += static_cast<std::size_t>(std::max(1, n.replicas));
    if (n.place.host)
      throw slurm_error(fmt::format("{}: node `{}` is pinned to host `{}` (placement.host), which a Slurm job does "
                                    "not have: its hosts are its tasks, NODE-tK; use placement.labels (node, "
                                    "partition, feature.NAME) or spread",
                                    n.place.where.str(), n.name, *n.place.host));
    for (const auto& [k, v] : n.place.labels) {
      auto conflict = [&](const std::string& had) {
        if (!had.empty() && had != v)
          throw slurm_error(fmt::format("{}: nodes ask for {}={} and {}={}: one job has one", n.place.where.str(), k,
                                        had, k, v));
      };
      if (k == "partition") {
        conflict(partition);
        partition = v;
      } else if (k == "node") {
        nodelist += (nodelist.empty() ? "" : ",") + v;
      } else if (k.starts_with("feature.") && v == "true") {
        features.insert(k.substr(8));
      } else {
        throw slurm_error(fmt::format("{}: node `{}` asks for the label {}={}; a Slurm host has only node=NAME, "
                                      "partition=NAME and feature.NAME=true",
                                      n.place.where.str(), n.name, k, v));
      }
      if (std::find(labels.begin(), labels.end(), std::pair{k, v}) == labels.end()) labels.emplace_back(k, v);
    }
  }
  s.cpus_per_task = std::max(1, static_cast<int>(std::ceil(cpus)));
  s.gpus_per_task = gpus;
  s.memory_per_task = memory;
  for (std::size_t k = 1; k <= std::max<std::size_t>(1, instances); ++k) {
    placement::cluster c;
    c.name = "sbatch";
    for (std::size_t t = 0; t < k; ++t) {
      placement::host h;
      h.name = fmt::format("t{}", t);
      h.address = "tcp://127.0.0.1:1";
      h.cpus = s.cpus_per_task;
      h.memory = memory;
      h.gpus.resize(static_cast<std::size_t>(gpus));
      h.labels = labels;
      c.hosts.push_back(std::move(h));
    }
    graph::diagnostics d;
    placement::make_plan(g, kinds, c, d);
    if (!d.has_errors()) {
      s.tasks = static_cast<int>(k);
      break;
    }
    if (k == std::max<std::size_t>(1, instances))
      throw slurm_error(fmt::format("{}: no number of tasks up to {} (one per instance) gives a plan:\n{}",
                                    g.where.str(), k, d.str()));
  }
  std::string t = "#!/bin/bash\n";
  t += fmt::format("# Written by `loom slurm {}`: graph `{}` ({} instances) needs {} task{} of {} CPU{}{}{}.\n",
                   r.graph_file, g.name, instances, s.tasks, s.tasks == 1 ? "" : "s", s.cpus_per_task,
                   s.cpus_per_task == 1 ? "" : "s", gpus ? fmt::format(", {} GPU{}", gpus, gpus == 1 ? "" : "s") : "",
                   memory ? ", " + placement::size_text(memory) : "");
  t += "# Each task runs one `loom worker` (started by `loom run --cluster slurm` with srun); see docs/slurm.md.\n";
  t += fmt::format("#SBATCH --job-name={}\n", shell_quote(g.name));
  t += fmt::format("#SBATCH --ntasks={}\n", s.tasks);
  t += fmt::format("#SBATCH --cpus-per-task={}\n", s.cpus_per_task);
  if (gpus) t += fmt::format("#SBATCH --gpus-per-task={}\n", gpus);
  if (memory)
    t += fmt::format("#SBATCH --mem-per-cpu={}M\n",
                     (memory + (1ull << 20) * static_cast<std::uint64_t>(s.cpus_per_task) - 1) /
                         ((1ull << 20) * static_cast<std::uint64_t>(s.cpus_per_task)));
  if (!partition.empty()) t += fmt::format("#SBATCH --partition={}\n", partition);
  if (!nodelist.empty()) t += fmt::format("#SBATCH --nodelist={}\n", nodelist);
  if (!features.empty()) {
    std::string f;
    for (const auto& x : features) f += (f.empty() ? "" : "&") + x;
    t += fmt::format("#SBATCH --constraint={}\n", shell_quote(f));
  }
  for (const auto& x : r.extra) t += fmt::format("#SBATCH {}\n", x);
  std::string run = fmt::format("exec {} run {} --cluster slurm", shell_quote(r.loom), shell_quote(r.graph_file));
  for (const auto& x : r.run_args) run += " " + shell_quote(x);
  t += "\n" + run + "\n";
  s.text = t;
  return s;
}

}  // namespace loom::cluster::slurm
