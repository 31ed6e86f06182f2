// runtime/cluster/slurm.hpp: the hosts of a Slurm allocation (docs/slurm.md). Inside `salloc`, `sbatch`
// or `srun --pty`, the job's environment and `scontrol` say which nodes the job has, how many tasks run on
// each and what each node gives the job (CPUs, memory, GPUs), its partition and features. Each task is one
// host of the plan (`NODE-tK`, K the task's rank), with its share of its node; the driver starts one
// `loom worker` per task with srun, as one job step, on free ports that each worker writes back.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loom/runtime/cluster/hosts.hpp"

namespace loom::cluster::slurm {

// Thrown for an allocation that cannot be read: not in a job, scontrol missing, a value not understood.
struct slurm_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "2(x3),1" (SLURM_TASKS_PER_NODE, SLURM_JOB_CPUS_PER_NODE) -> {2, 2, 2, 1}.
std::vector<int> parse_counts(std::string_view text, std::string_view what);

// One `scontrol -o show ...` record: KEY=VALUE pairs in order (a key may repeat, as in `show job -d`);
// words without `=` belong to the value before them ("OS=Linux 6.1 #1 SMP").
std::vector<std::pair<std::string, std::string>> parse_record(std::string_view line);

// GPUs in a GRES text: "gpu:4", "gpu:a100:2(IDX:0-1),gpu:v100:1", "(null)" -> 4, 3, 0.
int gpu_count(std::string_view gres);

// Slurm memory in MiB ("3000", "3000M", "4G", "1T") -> bytes.
std::uint64_t memory_bytes(std::string_view text, std::string_view what);

// One node of the job and what the job has of it.
struct node {
  std::string name;     // NodeName
  std::string address;  // NodeAddr: where its workers are reached
  int tasks = 1;        // tasks of the job on it
  double cpus = 1;      // CPUs of the job on it
  std::uint64_t memory = 0;  // bytes of the job on it; 0: not limited
  int gpus = 0;              // GPUs of the job on it
  std::string partition;
  std::vector<std::string> features;
};

struct allocation {
  std::string job_id;
  std::vector<node> nodes;
  int tasks = 0;
  bool inside_step = false;  // in `srun --pty`: the worker step must overlap it
};

// How the allocation is read: an environment lookup and a command runner (stdout; throws slurm_error).
struct probe {
  std::function<const char*(const char*)> env;
  std::function<std::string(const std::vector<std::string>&)> run;
};
probe system_probe();

// Reads the allocation from the job's environment and scontrol. Throws slurm_error naming what is missing.
allocation read_allocation(const probe& p);

// One host per task, named NODE-tK, with the task's share of its node (CPUs, memory and GPUs divided
// among the node's tasks; the first tasks take the rest) and the labels node=NAME, partition=P and
// feature.F="true" for each of the node's features. Addresses are tcp://NODEADDR:0 until the workers run.
placement::cluster to_cluster(const allocation& a);

// The source behind `--cluster slurm`.
std::unique_ptr<host_source> slurm_hosts(const host_source_options& options, probe p = system_probe());

// `loom slurm FILE`: an sbatch script that runs `loom run FILE --cluster slurm` on as many tasks as the
// plan needs (the fewest identical tasks of `cpus_per_task` CPUs and the GPUs the largest instance asks
// for on which the graph has a plan). `extra` are sbatch options copied as #SBATCH lines.
struct script_request {
  std::string graph_file;  // as it will be given to loom run
  std::vector<std::string> run_args;  // more `loom run` arguments (--set, --plugin)
  std::vector<std::string> extra;     // sbatch options
  std::string loom;                   // the loom binary in the script
};
struct script {
  std::string text;
  int tasks = 0, cpus_per_task = 1, gpus_per_task = 0;
  std::uint64_t memory_per_task = 0;
};
// Throws slurm_error when no number of tasks up to the graph's instance count gives a plan.
script make_script(const graph::graph& g, const graph::kind_catalog& kinds, const script_request& r);

}  // namespace loom::cluster::slurm
