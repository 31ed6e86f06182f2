// runtime/cluster/slurm_step.cpp: the Slurm host source's workers: one `loom worker --once` per task,
// started by srun as one job step, with a key pair made for the job in a private folder (0700, removed at
// the end); each worker writes back its address (address_file.hpp); the step is watched during the run and
// stopped after it (SIGTERM, then SIGINT twice, then SIGKILL of its process group).
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "loom/runtime/cluster/address_file.hpp"
#include "loom/runtime/cluster/slurm.hpp"
#include "loom/runtime/cluster/slurm_detail.hpp"
#include "loom/runtime/transport/keys.hpp"

namespace loom::cluster::slurm {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

// The Slurm source: the allocation's tasks; a worker step started with srun.
class slurm_source : public host_source {
 public:
  slurm_source(host_source_options o, probe p) : o_(std::move(o)), p_(std::move(p)) {}
  ~slurm_source() override { stop_workers(); }

  std::string describe() const override { return "Slurm job " + (a_ ? a_->job_id : std::string("?")); }

  std::optional<placement::cluster> hosts(graph::diagnostics& diags) override {
    try {
      a_ = read_allocation(p_);
    } catch (const std::exception& e) {
      diags.error(graph::location{std::make_shared<const std::string>("--cluster slurm")}, e.what(),
                  "`loom run FILE --cluster slurm` runs inside an allocation: salloc -n 3 loom run ..., or sbatch "
                  "(see `loom slurm FILE`)");
      return std::nullopt;
    }
    return to_cluster(*a_);
  }

  std::string start_workers(placement::cluster& c, const placement::plan&, driver_options& o) override {
    try {
      return start(c, o);
    } catch (const std::exception& e) {
      stop_workers();
      return e.what();
    }
  }

  std::string workers_gone() override {
    if (srun_ <= 0) return {};
    int status = 0;
    if (waitpid(srun_, &status, WNOHANG) != srun_) return {};
    srun_ = -1;
    return fmt::format("the worker step ended ({}): the job was cancelled or a worker died", status_text(status));
  }

  void stop_workers() override {
    if (srun_ > 0) {
      // srun passes SIGTERM on to every worker, which leaves at once; twice SIGINT within a second makes it
      // end the step; SIGKILL of its process group is the last word (Slurm still ends the step with the job).
      // Workers started with --once leave by themselves after the run; those still there (no run reached
      // them) are told to go.
      if (!reaped(std::chrono::seconds(2))) {
        log(fmt::format("stopping the worker step (srun pid {})", srun_));
        kill(srun_, SIGTERM);
      }
      if (srun_ > 0 && !reaped(std::chrono::seconds(3))) {
        kill(srun_, SIGINT);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        kill(srun_, SIGINT);
        if (!reaped(std::chrono::seconds(3))) {
          kill(-srun_, SIGKILL);
          waitpid(srun_, nullptr, 0);
        }
      }
      srun_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      dir_.clear();
    }
  }

 private:
  void log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  static std::string status_text(int status) {
    if (WIFEXITED(status)) return fmt::format("srun exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("srun was killed by signal {}", WTERMSIG(status));
    return "srun ended";
  }

  bool reaped(std::chrono::milliseconds limit) {
    auto end = clock::now() + limit;
    while (clock::now() < end) {
      if (waitpid(srun_, nullptr, WNOHANG) == srun_) {
        srun_ = -1;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::string start(placement::cluster& c, driver_options& o) {
    const auto& a = *a_;
    // A private folder for this job's keys and the workers' addresses: 0700, removed at the end.
    fs::path parent = o_.keys_parent.empty() ? fs::current_path() : fs::path(o_.keys_parent);
    std::string templ = (parent / fmt::format(".loom-slurm-{}-XXXXXX", a.job_id)).string();
    if (mkdtemp(templ.data()) == nullptr)
      throw slurm_error(fmt::format("cannot make a private folder for the job's keys in {}: {} (set LOOM_SLURM_KEYS_DIR "
                                    "to a folder every node of the job sees)",
                                    parent.string(), std::strerror(errno)));
    dir_ = fs::absolute(templ);
    chmod(dir_.c_str(), 0700);
    std::string key_prefix;
    if (transport::curve_available()) {
      auto keys = transport::generate_keypair();
      key_prefix = (dir_ / "job").string();
      transport::write_keypair(key_prefix, keys);
      o.curve = keys;
      o.server_key = keys.public_key;
    } else {
      log("this libzmq has no CurveZMQ: the workers' links are plain TCP");
    }

    bool loopback = std::all_of(a.nodes.begin(), a.nodes.end(), [](const node& n) { return n.address.starts_with("127."); });
    std::vector<std::string> argv{"srun", fmt::format("--ntasks={}", a.tasks), fmt::format("--nodes={}", std::count_if(a.nodes.begin(), a.nodes.end(), [](const node& n) { return n.tasks > 0; })),
                                  "--distribution=block", "--kill-on-bad-exit=1", "--job-name=loom-worker", "--quiet"};
    double min_cpus = 1e9;
    int min_gpus = 1 << 30, max_gpus = 0;
    for (const auto& h : c.hosts) {
      min_cpus = std::min(min_cpus, h.cpus);
      min_gpus = std::min(min_gpus, static_cast<int>(h.gpus.size()));
      max_gpus = std::max(max_gpus, static_cast<int>(h.gpus.size()));
    }
    if (min_cpus >= 1) argv.push_back(fmt::format("--cpus-per-task={}", static_cast<int>(std::floor(min_cpus))));
    if (max_gpus > 0 && min_gpus == max_gpus) argv.push_back(fmt::format("--gpus-per-task={}", max_gpus));
    if (a.inside_step) argv.push_back("--overlap");
    if (o_.worker_command.empty())
      argv.insert(argv.end(), {o_.loom.empty() ? fs::read_symlink("/proc/self/exe").string() : o_.loom, "worker"});
    else
      argv.insert(argv.end(), o_.worker_command.begin(), o_.worker_command.end());
    argv.insert(argv.end(), {"--listen", loopback ? "tcp://127.0.0.1:0" : "tcp://*:0", "--address-file",
                             (dir_ / "worker-%t.addr").string(), "--name", "task-%t", "--once"});
    // A worker given no keys would use the per-user pair, which needs CurveZMQ too: without it, say so.
    if (!key_prefix.empty()) argv.insert(argv.end(), {"--key", key_prefix});
    else argv.push_back("--insecure");
    if (o_.worker_command.empty())
      for (const auto& p : o_.plugins) argv.insert(argv.end(), {"--plugin", p});

    std::string cmd;
    for (const auto& x : argv) {
      if (!cmd.empty()) cmd += ' ';
      cmd += shell_quote(x);
    }
    log(fmt::format("starting {} workers: {}", a.tasks, cmd));
    pid_t parent_pid = getpid();
    srun_ = fork();
    if (srun_ < 0) throw slurm_error(fmt::format("cannot start srun: {}", std::strerror(errno)));
    if (srun_ == 0) {
      setpgid(0, 0);  // a terminal's Ctrl-C goes to the driver, which stops the step itself
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // and if the driver dies, srun ends the step
      if (getppid() != parent_pid) _exit(1);
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      std::vector<char*> args;
      for (auto& x : argv) args.push_back(x.data());
      args.push_back(nullptr);
      execvp("srun", args.data());
      std::fprintf(stderr, "loom: cannot run srun: %s\n", std::strerror(errno));
      _exit(127);
    }

    // Each worker writes its bound address and its node to worker-RANK.addr (written whole, then renamed).
    auto deadline = clock::now() + o_.start_timeout;
    std::vector<bool> seen(c.hosts.size());
    std::size_t ready = 0;
    while (ready < c.hosts.size()) {
      for (std::size_t k = 0; k < c.hosts.size(); ++k) {
        if (seen[k]) continue;
        auto written = read_address_file((dir_ / fmt::format("worker-{}.addr", k)).string());
        if (!written) continue;
        const auto& address = written->address;
        const auto& node_name = written->node;
        auto colon = address.rfind(':');
        if (colon == std::string::npos) throw slurm_error(fmt::format("worker of task {} wrote a bad address `{}`", k, address));
        const node* expected = nullptr;
        int first = 0;
        for (const auto& n : a.nodes) {
          if (static_cast<int>(k) < first + n.tasks) {
            expected = &n;
            break;
          }
          first += n.tasks;
        }
        if (expected && !node_name.empty() && node_name != expected->name)
          throw slurm_error(fmt::format("srun put task {} on node `{}`; the plan has it on `{}` (host `{}`)", k,
                                        node_name, expected->name, c.hosts[k].name));
        c.hosts[k].address = fmt::format("tcp://{}:{}", expected ? expected->address : node_name, address.substr(colon + 1));
        seen[k] = true;
        ++ready;
      }
      if (ready == c.hosts.size()) break;
      if (auto why = workers_gone(); !why.empty())
        throw slurm_error(fmt::format("{} before {} of {} workers reported their address", why, c.hosts.size() - ready,
                                      c.hosts.size()));
      if (o_.interrupted && o_.interrupted()) throw slurm_error("interrupted while the workers were starting");
      if (clock::now() > deadline) {
        std::string missing;
        for (std::size_t k = 0; k < c.hosts.size(); ++k)
          if (!seen[k]) missing += (missing.empty() ? "" : ", ") + c.hosts[k].name;
        throw slurm_error(fmt::format("workers did not report their address within {:.0f} s: {} (is the job step "
                                      "pending? see `squeue -s`)",
                                      std::chrono::duration<double>(o_.start_timeout).count(), missing));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (const auto& h : c.hosts) log(fmt::format("worker for host `{}` listens on {}", h.name, h.address));
    return {};
  }

  host_source_options o_;
  probe p_;
  std::optional<allocation> a_;
  fs::path dir_;
  pid_t srun_ = -1;
};

}  // namespace

std::unique_ptr<host_source> slurm_hosts(const host_source_options& options, probe p) {
  return std::make_unique<slurm_source>(options, std::move(p));
}

}  // namespace loom::cluster::slurm
