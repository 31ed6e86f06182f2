// tests/slurm/slurm_test.cpp: loom on a real one-node Slurm cluster (tests/slurm/slurm_cluster.sh, started
// by the CTest fixture `slurm`; SLURM_CONF points at it). `salloc -n 3` runs a graph whose replicas spread
// over three workers started with srun, with exact output; `loom plan --cluster slurm` shows the three
// tasks; a job cancelled mid-run leaves no `loom worker` and the driver exits non-zero; SIGINT of the driver
// ends the worker step; a plan that does not fit fails before srun; the flagship runs under `sbatch --wait`.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/cli/process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using loom::test::loom_binary;
using loom::test::process_options;
using loom::test::process_result;
using loom::test::run_process;

namespace {

const fs::path source_dir{LOOM_SOURCE_DIR};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh folder for one test (the jobs' working directory), with out/ and a bin/srun that records each
// call in srun.calls before it runs the real srun: so a test can tell whether workers were started.
struct job_dir {
  fs::path dir;
  explicit job_dir(const std::string& name) {
    dir = fs::temp_directory_path() / ("loom-slurm-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "out");
    fs::create_directories(dir / "bin");
    write("bin/srun", "#!/bin/sh\necho \"$@\" >> " + (dir / "srun.calls").string() + "\nexec /usr/bin/srun \"$@\"\n");
    fs::permissions(dir / "bin/srun", fs::perms::owner_all);
  }
  ~job_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path write(const std::string& file, const std::string& text) const {
    std::ofstream(dir / file) << text;
    return dir / file;
  }
  bool srun_called() const { return fs::exists(dir / "srun.calls"); }
  // Private key folders the driver made here and did not remove.
  std::vector<std::string> key_folders() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().starts_with(".loom-slurm-")) out.push_back(e.path().string());
    return out;
  }
  process_options options(std::chrono::milliseconds deadline = 120s) const {
    process_options o;
    o.cwd = dir.string();
    o.deadline = deadline;
    return o;
  }
};

// Every environment change here is inherited by salloc/sbatch and so by loom: PATH finds the recording srun.
struct path_with_fake_srun {
  std::string old;
  explicit path_with_fake_srun(const job_dir& d) {
    old = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
    setenv("PATH", ((d.dir / "bin").string() + ":" + old).c_str(), 1);
  }
  ~path_with_fake_srun() { setenv("PATH", old.c_str(), 1); }
};

// Every process of this build's loom binary whose first argument is `first` and, when `containing` is not
// empty, one of whose arguments contains it (a test's own folder: other tests run `loom run` and `loom
// worker` at the same time, and a signal must never reach theirs).
std::vector<pid_t> loom_processes(const std::string& first, const std::string& containing = {}) {
  std::vector<pid_t> out;
  auto binary = loom_binary();
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmdline = read_file(e.path() / "cmdline");
    std::vector<std::string> args;
    std::string cur;
    for (char c : cmdline) {
      if (c == '\0') args.push_back(cur), cur.clear();
      else cur += c;
    }
    bool mine = containing.empty() ||
                std::any_of(args.begin(), args.end(), [&](const std::string& a) { return a.find(containing) != std::string::npos; });
    if (args.size() >= 2 && args[0] == binary && args[1] == first && mine) out.push_back(std::stoi(name));
  }
  return out;
}

// Waits up to `limit` for no `loom worker` of this build to be left; returns how many are.
std::size_t workers_left_after(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!loom_processes("worker").empty() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(50ms);
  return loom_processes("worker").size();
}

bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return f();
}

// The first four columns (node, kind, in, out) of a node's row in the summary table, single-spaced.
std::string table_row(const std::string& err, const std::string& node) {
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream cols(line);
    std::string name, kind, in, out, more;
    if (cols >> name >> kind >> in >> out && name == node) {
      if (kind.starts_with("x")) {  // `work x3   flow.forward ...`
        name += " " + kind;
        kind = in, in = out;
        cols >> out;
      }
      return name + " " + kind + " " + in + " " + out;
    }
  }
  return "(no row for " + node + ")";
}

const char* spread_graph = R"(graph: spread-three
nodes:
  numbers: {kind: source.sequence, params: {count: 30000}}
  work: {kind: flow.forward, replicas: 3, spread: workers}
  out: {kind: sink.file, params: {path: out/numbers.jsonl}}
edges:
  - numbers -> work -> out
)";

// 200 messages a second for 30 s: a run that is still going when the test ends it.
const char* slow_graph = R"(graph: slow
nodes:
  numbers: {kind: source.sequence, params: {count: 6000}}
  pace: {kind: flow.throttle, params: {rate: 200}, replicas: 3, spread: workers}
  tally: {kind: sink.count}
edges:
  - numbers -> pace -> tally
)";

// Two replicas that each take a GPU, on different tasks.
// It lasts about 2.5 s (two replicas at 200 a second): long enough to look at the workers while it runs.
const char* gpu_graph = R"(graph: two-gpus
nodes:
  numbers: {kind: source.sequence, params: {count: 1000}}
  work: {kind: flow.throttle, params: {rate: 200}, replicas: 2, spread: gpus, resources: {gpus: 1}}
  out: {kind: sink.count, params: {expect: 1000}}
edges:
  - numbers -> work -> out
)";

// Each of the three replicas asks for 2 CPUs; a task of `salloc -n 3` has 1.
const char* too_big_graph = R"(graph: too-big
nodes:
  numbers: {kind: source.sequence, params: {count: 10}}
  work: {kind: flow.forward, replicas: 3, resources: {cpus: 2}}
  out: {kind: sink.count}
edges:
  - numbers -> work -> out
)";

}  // namespace

TEST_SUITE("slurm: a real one-node cluster" * doctest::timeout(180)) {
  TEST_CASE("salloc -n 3: loom plan shows three tasks; loom run spreads the replicas over three workers") {
    REQUIRE_MESSAGE(std::getenv("SLURM_CONF") != nullptr, "run through ctest: the `slurm` fixture starts Slurm");
    job_dir d("spread");
    path_with_fake_srun path(d);
    auto graph = d.write("spread.yaml", spread_graph);

    auto plan = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", loom_binary(), "plan", graph.string(),
                             "--cluster", "slurm"},
                            d.options());
    INFO("plan stdout: " << plan.out);
    INFO("plan stderr: " << plan.err);
    REQUIRE(plan.status == 0);
    CHECK(plan.out.find("on 3 hosts") != std::string::npos);
    for (auto host : {"localhost-t0", "localhost-t1", "localhost-t2"}) CHECK(plan.out.find(host) != std::string::npos);
    CHECK_FALSE(d.srun_called());  // planning starts no worker

    auto r = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", loom_binary(), "run", graph.string(), "--cluster",
                          "slurm"},
                         d.options());
    INFO("run stderr: " << r.err);
    REQUIRE(r.status == 0);
    CHECK(d.srun_called());
    // Three workers, one per task, each reported its own port.
    for (auto host : {"localhost-t0", "localhost-t1", "localhost-t2"})
      CHECK(r.err.find(std::string("worker for host `") + host + "` listens on tcp://127.0.0.1:") != std::string::npos);
    // Every number exactly once (three replicas: the order between them is not kept).
    std::istringstream lines(read_file(d.dir / "out/numbers.jsonl"));
    std::vector<int> seen;
    for (std::string line; std::getline(lines, line);) seen.push_back(std::stoi(line));
    std::sort(seen.begin(), seen.end());
    REQUIRE(seen.size() == 30000);
    for (int i = 0; i < 30000; ++i) REQUIRE(seen[static_cast<std::size_t>(i)] == i);
    CHECK(table_row(r.err, "work") == "work x3 flow.forward 30000 30000");
    CHECK(table_row(r.err, "out") == "out sink.file 30000 0");
    CHECK(d.key_folders().empty());  // the per-job keys are gone
    CHECK(workers_left_after(5s) == 0);

    // The example of docs/slurm.md and the README.
    auto example = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", loom_binary(), "run",
                                (source_dir / "configs/slurm_spread.yaml").string(), "--cluster", "slurm"},
                               d.options());
    INFO("example stderr: " << example.err);
    CHECK(example.status == 0);
    CHECK(table_row(example.err, "tally") == "tally sink.count 100000 0");
    CHECK(workers_left_after(5s) == 0);
  }

  TEST_CASE("salloc --gpus-per-task=1: each task's GPU is in the plan, and srun binds one GPU to each worker") {
    job_dir d("gpus");
    path_with_fake_srun path(d);
    auto graph = d.write("gpus.yaml", gpu_graph);
    std::vector<std::string> salloc{"/usr/bin/salloc", "-n", "2", "--gpus-per-task=1", "--quiet", loom_binary()};
    auto plan_argv = salloc;
    plan_argv.insert(plan_argv.end(), {"plan", graph.string(), "--cluster", "slurm"});
    auto plan = run_process(plan_argv, d.options());
    INFO("plan: " << plan.out << plan.err);
    REQUIRE(plan.status == 0);
    CHECK(plan.out.find("work[0]  localhost-t0 / gpu 0") != std::string::npos);
    CHECK(plan.out.find("work[1]  localhost-t1 / gpu 0") != std::string::npos);
    auto run_argv = salloc;
    run_argv.insert(run_argv.end(), {"run", graph.string(), "--cluster", "slurm"});
    process_result r;
    std::thread driver([&] { r = run_process(run_argv, d.options()); });
    // While it runs: each worker sees only its own GPU (Slurm sets CUDA_VISIBLE_DEVICES per task).
    std::vector<std::string> visible;
    wait_until([&] {
      visible.clear();
      for (auto pid : loom_processes("worker")) {
        std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
        auto at = env.find(std::string("CUDA_VISIBLE_DEVICES=", 21));
        if (at != std::string::npos) visible.push_back(env.substr(at + 21, env.find('\0', at) - at - 21));
      }
      return visible.size() == 2;
    }, 20s);
    driver.join();
    INFO("run: " << r.err);
    CHECK(r.status == 0);
    CHECK(read_file(d.dir / "srun.calls").find("--gpus-per-task=1") != std::string::npos);
    std::sort(visible.begin(), visible.end());
    CHECK(visible == std::vector<std::string>{"0", "1"});
  }

  TEST_CASE("a node that fails on a worker fails the run: exit status 1 and the node's error") {
    job_dir d("fail");
    auto graph = d.write("fail.yaml", R"(graph: fails
nodes:
  numbers: {kind: source.sequence, params: {count: 1000}}
  work: {kind: flow.forward, replicas: 3, spread: workers}
  tally: {kind: sink.count, params: {expect: 7}}
edges:
  - numbers -> work -> tally
)");
    auto r = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", loom_binary(), "run", graph.string(), "--cluster",
                          "slurm"},
                         d.options());
    INFO("stderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("node `tally` (sink.count) failed while finishing: expected 7 messages, got 1000") !=
          std::string::npos);
    CHECK(workers_left_after(5s) == 0);
    CHECK(d.key_folders().empty());
  }

  TEST_CASE("outside an allocation, --cluster slurm is a clear error (exit 2) that says where to run it") {
    job_dir d("outside");
    auto plain = run_process({loom_binary(), "run", (source_dir / "configs/slurm_spread.yaml").string(), "--cluster",
                              "slurm"},
                             d.options());  // the test itself runs in no job
    CHECK(plain.status == 2);
    CHECK(plain.err.find("not inside a Slurm allocation: SLURM_JOB_ID is not set") != std::string::npos);
    CHECK(plain.err.find("salloc") != std::string::npos);
  }

  TEST_CASE("a plan that does not fit the allocation fails before srun, naming the host and the resource") {
    job_dir d("too-big");
    path_with_fake_srun path(d);
    auto graph = d.write("too_big.yaml", too_big_graph);
    auto r = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", loom_binary(), "run", graph.string(), "--cluster",
                          "slurm"},
                         d.options());
    INFO("stderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("node `work` needs 2 cpus; the most a host offers is 1 (`localhost-t0`)") != std::string::npos);
    CHECK(r.err.find("no plan of") != std::string::npos);
    CHECK_FALSE(d.srun_called());
    CHECK(d.key_folders().empty());
  }

  TEST_CASE("scancel of the job mid-run: no loom worker is left and the driver exits non-zero") {
    job_dir d("cancel");
    auto graph = d.write("slow.yaml", slow_graph);
    auto job_name = "loom-cancel-" + std::to_string(getpid());
    process_result r;
    std::thread driver([&] {
      r = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", "--job-name=" + job_name, loom_binary(), "run",
                       graph.string(), "--cluster", "slurm"},
                      d.options(60s));
    });
    // The run is under way once the three workers are up and a second has passed.
    bool up = wait_until([&] { return loom_processes("worker", d.dir.string()).size() == 3; }, 30s);
    std::this_thread::sleep_for(1s);
    auto cancelled_at = std::chrono::steady_clock::now();
    auto scancel = run_process({"/usr/bin/scancel", "--name=" + job_name});
    driver.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - cancelled_at).count();
    INFO("stderr: " << r.err);
    INFO("scancel: " << scancel.err);
    REQUIRE(up);
    CHECK(scancel.status == 0);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status != 0);
    CHECK(seconds < 15);
    CHECK(workers_left_after(10s) == 0);
    CHECK(d.key_folders().empty());
  }

  TEST_CASE("SIGINT of the driver ends every worker step within a few seconds") {
    job_dir d("sigint");
    auto graph = d.write("slow.yaml", slow_graph);
    process_result r;
    std::thread driver([&] {
      r = run_process({"/usr/bin/salloc", "-n", "3", "--quiet", loom_binary(), "run", graph.string(), "--cluster",
                       "slurm"},
                      d.options(60s));
    });
    bool up = wait_until([&] { return loom_processes("worker", d.dir.string()).size() == 3; }, 30s);
    std::this_thread::sleep_for(1s);
    auto drivers = loom_processes("run", graph.string());
    for (auto pid : drivers) kill(pid, SIGINT);
    auto sent_at = std::chrono::steady_clock::now();
    driver.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent_at).count();
    INFO("stderr: " << r.err);
    REQUIRE(up);
    REQUIRE(drivers.size() == 1);
    CHECK(r.status == 130);
    CHECK(r.err.find("interrupted") != std::string::npos);
    CHECK(seconds < 10);
    CHECK(workers_left_after(5s) == 0);
    CHECK(d.key_folders().empty());
  }

  TEST_CASE("the flagship runs under sbatch --wait, from the script loom slurm writes and submits") {
    job_dir d("flagship");
    fs::copy(source_dir / "configs", d.dir / "configs", fs::copy_options::recursive);
    // The script `loom slurm` writes for the flagship, submitted (--submit) and waited for (--wait: an
    // sbatch option, copied into the script like the others).
    auto r = run_process({loom_binary(), "slurm", "configs/food_truck.yaml", "--script", "food_truck.sbatch",
                          "--submit", "--wait", "--output=job.log", "--time=10"},
                         d.options(150s));
    auto text = read_file(d.dir / "food_truck.sbatch");
    INFO("script:\n" << text);
    INFO("loom slurm: " << r.out << r.err);
    INFO("job log:\n" << read_file(d.dir / "job.log"));
    CHECK(text.find("#SBATCH --ntasks=") != std::string::npos);
    CHECK(text.find("#SBATCH --wait\n") != std::string::npos);
    CHECK(text.find("#SBATCH --output=job.log\n") != std::string::npos);
    CHECK(text.find("--cluster slurm") != std::string::npos);
    CHECK_FALSE(r.timed_out);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("Submitted batch job") != std::string::npos);
    CHECK(read_file(d.dir / "job.log").find("driver: run ") != std::string::npos);  // it ran as a distributed run
    auto doc = read_file(d.dir / "out/launch_package.md");
    CHECK(doc.rfind("# Food truck launch package\n", 0) == 0);
    for (auto section : {"\n## design\n", "\n## finance\n", "\n## market\n", "\n## marketing\n", "\n## ops\n"})
      CHECK(doc.find(section) != std::string::npos);
    // The same package as a run in one process.
    job_dir local("flagship-local");
    fs::copy(source_dir / "configs", local.dir / "configs", fs::copy_options::recursive);
    auto one = run_process({loom_binary(), "run", "-q", "configs/food_truck.yaml"}, local.options());
    REQUIRE(one.status == 0);
    CHECK(doc == read_file(local.dir / "out/launch_package.md"));
    CHECK(workers_left_after(5s) == 0);
  }
}
