// runtime/cluster/slurm.cpp: reading a Slurm allocation (the job's environment and scontrol) and one plan
// host per task. The worker step (srun): slurm_step.cpp; `loom slurm`'s sbatch script: slurm_script.cpp.
#include "loom/runtime/cluster/slurm.hpp"
#include "loom/runtime/cluster/slurm_detail.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>

namespace loom::cluster::slurm {
namespace {

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

}  // namespace

// Quoted for a POSIX shell only when it needs to be (a log line, an sbatch script).
std::string shell_quote(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("@%+=:,./_-", c) != nullptr;
      }))
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

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

}  // namespace loom::cluster::slurm
