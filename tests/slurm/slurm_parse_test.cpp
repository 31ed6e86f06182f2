// tests/slurm/slurm_parse_test.cpp: reading a Slurm allocation without Slurm: counts, scontrol records,
// GRES, memory sizes, the allocation from a fake environment and scontrol, one host per task with its
// share of its node, the sbatch script `loom slurm` writes, and the address file a started worker writes
// back.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/address_file.hpp"
#include "loom/runtime/cluster/slurm.hpp"
#include "loom/runtime/placement/planner.hpp"
#include "loom/runtime/registry.hpp"

using namespace loom::cluster::slurm;

TEST_CASE("task and CPU counts per node") {
  CHECK(parse_counts("3", "T") == std::vector<int>{3});
  CHECK(parse_counts("2(x3),1", "T") == std::vector<int>{2, 2, 2, 1});
  CHECK(parse_counts("4(x2)", "T") == std::vector<int>{4, 4});
  CHECK_THROWS_WITH_AS(parse_counts("2(y3)", "SLURM_TASKS_PER_NODE"),
                       doctest::Contains("SLURM_TASKS_PER_NODE `2(y3)`"), slurm_error);
  CHECK_THROWS_AS(parse_counts("", "T"), slurm_error);
  CHECK_THROWS_AS(parse_counts("x", "T"), slurm_error);
}

TEST_CASE("scontrol records, GRES and memory") {
  auto r = parse_record("NodeName=n1 Arch=x86_64 OS=Linux 6.1 #1 SMP Gres=gpu:a100:4(S:0-1) NodeAddr=10.0.0.1");
  std::map<std::string, std::string> m(r.begin(), r.end());
  CHECK(m["NodeName"] == "n1");
  CHECK(m["OS"] == "Linux 6.1 #1 SMP");
  CHECK(m["NodeAddr"] == "10.0.0.1");
  CHECK(gpu_count(m["Gres"]) == 4);
  CHECK(gpu_count("gpu:a100:2(IDX:0-1),gpu:v100:1") == 3);
  CHECK(gpu_count("gpu:2,shard:8") == 2);
  CHECK(gpu_count("(null)") == 0);
  CHECK(gpu_count("") == 0);
  CHECK(memory_bytes("3000", "m") == 3000ull << 20);
  CHECK(memory_bytes("4G", "m") == 4ull << 30);
  CHECK(memory_bytes("512M", "m") == 512ull << 20);
  CHECK_THROWS_WITH_AS(memory_bytes("4Q", "Mem"), doctest::Contains("unknown unit"), slurm_error);
}

namespace {

// A two-node job: 2 tasks on gpu01 (8 CPUs, 64 GiB, 4 GPUs) and 1 on gpu02 (4 CPUs, 32 GiB, 1 GPU).
probe fake_job(std::map<std::string, std::string> env) {
  auto shared_env = std::make_shared<std::map<std::string, std::string>>(std::move(env));
  probe p;
  p.env = [shared_env](const char* name) -> const char* {
    auto it = shared_env->find(name);
    return it == shared_env->end() ? nullptr : it->second.c_str();
  };
  p.run = [](const std::vector<std::string>& argv) -> std::string {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    if (cmd == "scontrol show hostnames gpu[01-02]") return "gpu01\ngpu02\n";
    if (cmd == "scontrol -d -o show job 77")
      return "JobId=77 JobName=g Partition=train NumNodes=2 NumCPUs=12 NumTasks=3 CPUs/Task=2 Nodes=gpu01 CPU_IDs=0-7 Mem=65536 "
             "GRES=gpu:h100:4(IDX:0-3) Nodes=gpu02 CPU_IDs=0-3 Mem=32768 GRES=gpu:h100:1(IDX:0)\n";
    if (cmd == "scontrol -o show node gpu[01-02]")
      return "NodeName=gpu01 CPUTot=64 NodeAddr=10.1.0.1 ActiveFeatures=nvlink,ib Partitions=train\n"
             "NodeName=gpu02 CPUTot=64 NodeAddr=10.1.0.2 ActiveFeatures=(null) Partitions=train\n";
    throw slurm_error("unexpected command: " + cmd);
  };
  return p;
}

}  // namespace

TEST_CASE("the allocation: one host per task, with its share of its node and its labels") {
  auto a = read_allocation(fake_job({{"SLURM_JOB_ID", "77"},
                                     {"SLURM_JOB_NODELIST", "gpu[01-02]"},
                                     {"SLURM_TASKS_PER_NODE", "2,1"},
                                     {"SLURM_JOB_CPUS_PER_NODE", "8,4"}}));
  REQUIRE(a.nodes.size() == 2);
  CHECK(a.tasks == 3);
  CHECK(a.nodes[0].address == "10.1.0.1");
  CHECK(a.nodes[0].gpus == 4);
  CHECK(a.nodes[1].memory == 32768ull << 20);
  CHECK_FALSE(a.inside_step);
  auto c = to_cluster(a);
  REQUIRE(c.hosts.size() == 3);
  CHECK(c.hosts[0].name == "gpu01-t0");
  CHECK(c.hosts[1].name == "gpu01-t1");
  CHECK(c.hosts[2].name == "gpu02-t2");
  CHECK(c.hosts[0].cpus == 4);
  CHECK(c.hosts[0].memory == 32768ull << 20);
  CHECK(c.hosts[0].gpus.size() == 2);
  CHECK(c.hosts[2].gpus.size() == 1);
  CHECK(*c.hosts[0].label("partition") == "train");
  CHECK(*c.hosts[1].label("feature.ib") == "true");
  CHECK(*c.hosts[2].label("node") == "gpu02");
  CHECK(c.hosts[2].label("feature.ib") == nullptr);
}

TEST_CASE("outside a job, or with counts that do not match the nodes, the error says what is wrong") {
  CHECK_THROWS_WITH_AS(read_allocation(fake_job({})), doctest::Contains("SLURM_JOB_ID is not set"), slurm_error);
  CHECK_THROWS_WITH_AS(read_allocation(fake_job({{"SLURM_JOB_ID", "77"},
                                                 {"SLURM_JOB_NODELIST", "gpu[01-02]"},
                                                 {"SLURM_TASKS_PER_NODE", "3"}})),
                       doctest::Contains("SLURM_TASKS_PER_NODE=`3` gives 1 counts for the 2 nodes"), slurm_error);
}

TEST_CASE("inside a step (srun --pty), the job's tasks come from scontrol, not the step's environment") {
  auto inside = read_allocation(fake_job({{"SLURM_JOB_ID", "77"},
                                          {"SLURM_JOB_NODELIST", "gpu[01-02]"},
                                          {"SLURM_JOB_CPUS_PER_NODE", "8,4"},
                                          {"SLURM_TASKS_PER_NODE", "1,0"},  // the step's
                                          {"SLURM_STEP_ID", "0"}}));
  CHECK(inside.inside_step);
  REQUIRE(inside.nodes.size() == 2);
  CHECK(inside.tasks == 3);
  CHECK(inside.nodes[0].tasks == 2);  // 8 CPUs at 2 a task: room for the two that are left after one each
  CHECK(inside.nodes[1].tasks == 1);
  auto batch = read_allocation(fake_job({{"SLURM_JOB_ID", "77"}, {"SLURM_JOB_NODELIST", "gpu[01-02]"}, {"SLURM_STEP_ID", "4294967294"}}));
  CHECK_FALSE(batch.inside_step);
}

namespace {

loom::graph::graph load_graph(const std::string& text, const loom::registry& kinds) {
  loom::graph::diagnostics d;
  auto g = loom::graph::load_graph_text(text, "g.yaml", d);
  REQUIRE(g);
  loom::graph::validate(*g, kinds, d);
  INFO(d.str());
  REQUIRE_FALSE(d.has_errors());
  loom::graph::apply_defaults(*g, kinds);
  return *g;
}

}  // namespace

TEST_CASE("loom slurm: the script asks for the tasks, CPUs, GPUs and labels the plan needs") {
  loom::registry kinds;
  loom::actors::register_builtins(kinds);
  auto g = load_graph(R"(graph: spread3
nodes:
  src: {kind: source.sequence, params: {count: 10}}
  w: {kind: flow.forward, replicas: 3, spread: safety, resources: {cpus: 2, memory: 1GiB},
      placement: {labels: {partition: train, feature.ib: "true"}}}
  out: {kind: sink.count}
edges:
  - src -> w -> out
)",
                      kinds);
  script_request r;
  r.graph_file = "/data/g.yaml";
  r.loom = "/opt/loom/bin/loom";
  r.run_args = {"--set", "src.count=5"};
  r.extra = {"--time=10", "-A my project"};
  auto s = make_script(g, kinds, r);
  CHECK(s.tasks == 3);  // spread: three instances on three different tasks
  CHECK(s.cpus_per_task == 2);
  CHECK(s.text.find("#SBATCH --ntasks=3\n") != std::string::npos);
  CHECK(s.text.find("#SBATCH --cpus-per-task=2\n") != std::string::npos);
  CHECK(s.text.find("#SBATCH --mem-per-cpu=512M\n") != std::string::npos);
  CHECK(s.text.find("#SBATCH --partition=train\n") != std::string::npos);
  CHECK(s.text.find("#SBATCH --constraint=ib\n") != std::string::npos);
  CHECK(s.text.find("#SBATCH --time=10\n") != std::string::npos);
  CHECK(s.text.find("#SBATCH -A my project\n") != std::string::npos);
  CHECK(s.text.find("exec /opt/loom/bin/loom run /data/g.yaml --cluster slurm --set src.count=5\n") != std::string::npos);
  CHECK(s.text.find("--gpus-per-task") == std::string::npos);

  auto one = load_graph(R"(graph: one
nodes:
  src: {kind: source.sequence, params: {count: 10}}
  out: {kind: sink.count}
edges:
  - src -> out
)",
                        kinds);
  CHECK(make_script(one, kinds, r).tasks == 1);

  auto bad = load_graph(R"(graph: bad
nodes:
  src: {kind: source.sequence, params: {count: 10}, placement: {labels: {zone: paris}}}
  out: {kind: sink.count}
edges:
  - src -> out
)",
                        kinds);
  CHECK_THROWS_WITH_AS(make_script(bad, kinds, r), doctest::Contains("label zone=paris"), slurm_error);

  auto pinned = load_graph(R"(graph: pinned
nodes:
  src: {kind: source.sequence, params: {count: 10}, placement: {host: a}}
  out: {kind: sink.count}
edges:
  - src -> out
)",
                           kinds);
  CHECK_THROWS_WITH_AS(make_script(pinned, kinds, r), doctest::Contains("node `src` is pinned to host `a`"), slurm_error);
}

TEST_CASE("a worker's address file: written whole and renamed, read back; not there yet is no address") {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("loom-address-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto path = (dir / "worker-0.addr").string();
  CHECK_FALSE(loom::cluster::read_address_file(path));
  loom::cluster::write_address_file(path, {"tcp://127.0.0.1:41234", "node7"});
  CHECK_FALSE(fs::exists(path + ".tmp"));
  auto back = loom::cluster::read_address_file(path);
  REQUIRE(back);
  CHECK(back->address == "tcp://127.0.0.1:41234");
  CHECK(back->node == "node7");
  // Outside Slurm the node line is empty (as the Python worker writes it too).
  std::ofstream(path) << "tcp://127.0.0.1:5\n\n";
  back = loom::cluster::read_address_file(path);
  REQUIRE(back);
  CHECK(back->address == "tcp://127.0.0.1:5");
  CHECK(back->node.empty());
  CHECK_THROWS_AS(loom::cluster::write_address_file((dir / "no" / "such" / "f").string(), {"tcp://x:1", ""}),
                  std::exception);
  fs::remove_all(dir);
}
