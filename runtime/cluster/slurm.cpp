// runtime/cluster/slurm.cpp: reading a Slurm allocation (environment and scontrol), one plan host per
// task, the worker step (srun) with per-job keys in a private folder, and `loom slurm`'s sbatch script.
#include "loom/runtime/cluster/slurm.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "loom/runtime/transport/keys.hpp"

namespace loom::cluster::slurm {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!trim(cur).empty()) out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) out.push_back(trim(cur));
  return out;
}

bool is_null(std::string_view v) { return v.empty() || v == "(null)" || v == "N/A" || v == "none"; }

// The first value of `key` in a record, or "".
std::string field(const std::vector<std::pair<std::string, std::string>>& record, std::string_view key) {
  for (const auto& [k, v] : record)
    if (k == key) return v;
  return {};
}

// Runs argv (PATH lookup), returns its stdout; throws slurm_error with its stderr when it fails.
std::string run_command(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) throw slurm_error(fmt::format("cannot run {}: {}", argv[0], std::strerror(errno)));
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]), close(out[1]), close(err[0]), close(err[1]);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "%s", std::strerror(errno));
    _exit(127);
  }
  close(out[1]), close(err[1]);
  // Small outputs: read stdout, then stderr (scontrol writes little to stderr).
  auto slurp = [](int fd) {
    std::string s;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) s.append(buf, static_cast<std::size_t>(n));
    close(fd);
    return s;
  };
  std::string o = slurp(out[0]), e = slurp(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw slurm_error(fmt::format("`{}` failed{}{}", cmd,
                                  WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is Slurm installed?)" : "",
                                  trim(e).empty() ? "" : ": " + trim(e)));
  }
  return o;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!trim(line).empty()) out.push_back(trim(line));
  return out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("@%+=:,./_-", c) != nullptr;
      }))
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::vector<int> parse_counts(std::string_view text, std::string_view what) {
  std::vector<int> out;
  auto bad = [&](const std::string& why) {
    return slurm_error(fmt::format("{} `{}`: {} (expected counts like `2(x3),1`)", what, text, why));
  };
  for (const auto& item : split(text, ',')) {
    int count = 0, repeat = 1;
    auto paren = item.find('(');
    std::string_view num = std::string_view(item).substr(0, paren);
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), count);
    if (ec != std::errc{} || end != num.data() + num.size() || count < 0) throw bad(fmt::format("`{}` is not a count", item));
    if (paren != std::string::npos) {
      std::string_view rest = std::string_view(item).substr(paren);
      if (rest.size() < 4 || rest.substr(0, 2) != "(x" || rest.back() != ')') throw bad(fmt::format("`{}` is not N(xM)", item));
      std::string_view rep = rest.substr(2, rest.size() - 3);
      auto [e2, ec2] = std::from_chars(rep.data(), rep.data() + rep.size(), repeat);
      if (ec2 != std::errc{} || e2 != rep.data() + rep.size() || repeat < 1) throw bad(fmt::format("`{}` has a bad repeat", item));
    }
    for (int i = 0; i < repeat; ++i) out.push_back(count);
  }
  if (out.empty()) throw bad("empty");
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_record(std::string_view line) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream words{std::string(line)};
  for (std::string w; words >> w;) {
    auto eq = w.find('=');
    bool key_like = eq != std::string::npos && eq > 0 &&
                    std::all_of(w.begin(), w.begin() + static_cast<long>(eq), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/' || c == ':' || c == '.';
                    });
    if (key_like)
      out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    else if (!out.empty())
      out.back().second += " " + w;
  }
  return out;
}

int gpu_count(std::string_view gres) {
  if (is_null(gres)) return 0;
  int total = 0;
  // Items are separated by commas outside parentheses: gpu:a100:2(IDX:0-1),gpu:1
  std::vector<std::string> items;
  std::string cur;
  int depth = 0;
  for (char c : gres) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      items.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  items.push_back(cur);
  for (auto item : items) {
    item = item.substr(0, item.find('('));
    auto parts = split(item, ':');
    if (parts.empty() || parts[0] != "gpu") continue;
    int n = 1;  // "gpu" alone, or "gpu:TYPE": one
    const std::string& last = parts.back();
    if (parts.size() > 1 && std::all_of(last.begin(), last.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      n = std::stoi(last);
    total += n;
  }
  return total;
}

std::uint64_t memory_bytes(std::string_view text, std::string_view what) {
  std::string t = trim(text);
  if (t.empty()) throw slurm_error(fmt::format("{}: empty memory size", what));
  std::uint64_t unit = 1ull << 20;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
  if (std::isalpha(static_cast<unsigned char>(last))) {
    t.pop_back();
    switch (last) {
      case 'K': unit = 1ull << 10; break;
      case 'M': unit = 1ull << 20; break;
      case 'G': unit = 1ull << 30; break;
      case 'T': unit = 1ull << 40; break;
      default: throw slurm_error(fmt::format("{} `{}`: unknown unit `{}` (K, M, G or T)", what, text, last));
    }
  }
  double v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc{} || end != t.data() + t.size() || v < 0)
    throw slurm_error(fmt::format("{} `{}` is not a memory size (MiB, or with K/M/G/T)", what, text));
  return static_cast<std::uint64_t>(v * static_cast<double>(unit));
}

probe system_probe() {
  return probe{[](const char* name) { return static_cast<const char*>(std::getenv(name)); }, run_command};
}

allocation read_allocation(const probe& p) {
  auto env = [&](const char* name) -> std::string {
    const char* v = p.env(name);
    return v ? std::string(v) : std::string();
  };
  allocation a;
  a.job_id = env("SLURM_JOB_ID");
  if (a.job_id.empty()) a.job_id = env("SLURM_JOBID");
  if (a.job_id.empty())
    throw slurm_error("not inside a Slurm allocation: SLURM_JOB_ID is not set (run under salloc, sbatch or srun --pty)");
  auto nodelist = env("SLURM_JOB_NODELIST");
  if (nodelist.empty()) nodelist = env("SLURM_NODELIST");
  if (nodelist.empty()) throw slurm_error(fmt::format("Slurm job {}: SLURM_JOB_NODELIST is not set", a.job_id));
  auto names = lines_of(p.run({"scontrol", "show", "hostnames", nodelist}));
  if (names.empty()) throw slurm_error(fmt::format("Slurm job {}: `scontrol show hostnames {}` named no node", a.job_id, nodelist));

  auto per_node = [&](const char* var, int fallback) {
    auto text = env(var);
    if (text.empty()) return std::vector<int>(names.size(), fallback);
    auto counts = parse_counts(text, var);
    if (counts.size() != names.size())
      throw slurm_error(fmt::format("{}=`{}` gives {} counts for the {} nodes of {}", var, text, counts.size(),
                                    names.size(), nodelist));
    return counts;
  };
  auto step = env("SLURM_STEP_ID");
  a.inside_step = !step.empty() && step != "4294967294" && step != "batch";  // 4294967294: the batch step
  auto cpus = per_node("SLURM_JOB_CPUS_PER_NODE", 0);

  // The job's detail: its partition, and per node group the memory and GPUs it has there.
  auto job = parse_record(p.run({"scontrol", "-d", "-o", "show", "job", a.job_id}));

  // Inside a step (`srun --pty bash`) SLURM_TASKS_PER_NODE is the step's: the job's tasks are NumTasks,
  // laid out as Slurm's block distribution does, as many per node as its CPUs hold.
  std::vector<int> tasks;
  if (a.inside_step) {
    int total = std::max(1, std::atoi(field(job, "NumTasks").c_str()));
    int per_task = std::max(1, std::atoi(field(job, "CPUs/Task").c_str()));
    // Every node has at least one task (the job has each node for a reason), then each fills up in order.
    tasks.assign(names.size(), total >= static_cast<int>(names.size()) ? 1 : 0);
    int left = total - std::accumulate(tasks.begin(), tasks.end(), 0);
    for (std::size_t i = 0; i < names.size() && left > 0; ++i) {
      int fit = cpus[i] > 0 ? std::max(1, cpus[i] / per_task) : 1;
      int more = std::min(left, std::max(0, fit - tasks[i]));
      tasks[i] += more, left -= more;
    }
    for (std::size_t i = 0; left > 0; i = (i + 1) % tasks.size()) ++tasks[i], --left;
  } else {
    tasks = per_node("SLURM_TASKS_PER_NODE", 1);
  }
  std::map<std::string, std::uint64_t> mem_of;
  std::map<std::string, int> gpus_of;
  std::vector<std::string> group;
  for (const auto& [k, v] : job) {
    if (k == "Nodes") {
      group = v.find_first_of("[,") == std::string::npos ? std::vector<std::string>{v}
                                                         : lines_of(p.run({"scontrol", "show", "hostnames", v}));
    } else if (k == "Mem" && !group.empty()) {
      for (const auto& n : group) mem_of[n] = memory_bytes(v, "scontrol show job: Mem");
    } else if (k == "GRES" && !group.empty()) {
      for (const auto& n : group) gpus_of[n] = gpu_count(v);
    }
  }
  std::string partition = field(job, "Partition");
  std::uint64_t mem_per_node = 0, mem_per_cpu = 0;
  if (auto m = env("SLURM_MEM_PER_NODE"); !m.empty()) mem_per_node = memory_bytes(m, "SLURM_MEM_PER_NODE");
  if (auto m = env("SLURM_MEM_PER_CPU"); !m.empty()) mem_per_cpu = memory_bytes(m, "SLURM_MEM_PER_CPU");

  // The nodes themselves: address, features, CPUs (when the job's environment did not say).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> info;
  for (const auto& line : lines_of(p.run({"scontrol", "-o", "show", "node", nodelist}))) {
    auto r = parse_record(line);
    info[field(r, "NodeName")] = r;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    node n;
    n.name = names[i];
    auto it = info.find(n.name);
    if (it == info.end()) throw slurm_error(fmt::format("Slurm job {}: `scontrol show node` does not describe node `{}`", a.job_id, n.name));
    const auto& r = it->second;
    n.address = field(r, "NodeAddr");
    if (is_null(n.address)) n.address = n.name;
    n.tasks = tasks[i];
    n.cpus = cpus[i] > 0 ? cpus[i] : std::max(1, std::atoi(field(r, "CPUTot").c_str()));
    if (auto m = mem_of.find(n.name); m != mem_of.end()) n.memory = m->second;
    if (n.memory == 0) n.memory = mem_per_node ? mem_per_node : mem_per_cpu * static_cast<std::uint64_t>(n.cpus);
    if (auto g = gpus_of.find(n.name); g != gpus_of.end()) n.gpus = g->second;
    else if (auto g2 = env("SLURM_GPUS_ON_NODE"); !g2.empty() && names.size() == 1) n.gpus = std::atoi(g2.c_str());
    n.partition = partition;
    auto features = field(r, "ActiveFeatures");
    if (is_null(features)) features = field(r, "AvailableFeatures");
    if (!is_null(features)) n.features = split(features, ',');
    a.tasks += n.tasks;
    a.nodes.push_back(std::move(n));
  }
  return a;
}

placement::cluster to_cluster(const allocation& a) {
  placement::cluster c;
  c.name = "slurm-job-" + a.job_id;
  c.where.file = std::make_shared<const std::string>("Slurm job " + a.job_id);
  int rank = 0;
  for (const auto& n : a.nodes) {
    for (int t = 0; t < n.tasks; ++t, ++rank) {
      placement::host h;
      h.name = fmt::format("{}-t{}", n.name, rank);
      h.address = fmt::format("tcp://{}:0", n.address);
      h.cpus = n.cpus / n.tasks;
      h.memory = n.memory / static_cast<std::uint64_t>(n.tasks);
      int gpus = n.gpus / n.tasks + (t < n.gpus % n.tasks ? 1 : 0);
      for (int g = 0; g < gpus; ++g) h.gpus.push_back(placement::gpu{});
      h.labels.emplace_back("node", n.name);
      if (!n.partition.empty()) h.labels.emplace_back("partition", n.partition);
      for (const auto& f : n.features) h.labels.emplace_back("feature." + f, "true");
      h.where = c.where;
      c.hosts.push_back(std::move(h));
    }
  }
  return c;
}

namespace {

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
    for (const auto& x : argv) cmd += (cmd.empty() ? "" : " ") + shell_quote(x);
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
        std::ifstream in(dir_ / fmt::format("worker-{}.addr", k));
        std::string address, node_name;
        if (!(in >> address)) continue;
        in >> node_name;
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
