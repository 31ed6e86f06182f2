// cli/slurm.cpp: `loom slurm FILE [sbatch options]`: the sbatch script that runs a graph on Slurm with as
// many tasks, CPUs and GPUs as its plan needs (runtime/cluster/slurm.hpp); printed, written to a file, or
// submitted with sbatch.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/commands.hpp"
#include "cli/load.hpp"
#include "loom/runtime/cluster/slurm.hpp"

namespace loom::cli {

int slurm_command(const common_options& common, const slurm_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto g = load(options.file, *kinds, options.sets);
  if (!g) return invalid;
  // `--time=10`, `-p gpu`, `--partition gpu`: an option and its value become one #SBATCH line.
  std::vector<std::string> lines;
  for (const auto& x : options.extra) {
    if (x.starts_with("-")) {
      lines.push_back(x);
    } else if (!lines.empty() && lines.back().find_first_of("= ") == std::string::npos) {
      lines.back() += " " + x;
    } else {
      print_error(fmt::format("`{}` is not an sbatch option (they start with `-`, e.g. --time=10 or -p gpu)", x));
      return invalid;
    }
  }
  cluster::slurm::script_request r;
  r.graph_file = std::filesystem::absolute(options.file).string();
  for (const auto& s : options.sets) r.run_args.insert(r.run_args.end(), {"--set", s});
  for (const auto& p : common.plugins)
    r.run_args.insert(r.run_args.end(), {"--plugin", std::filesystem::absolute(p).string()});
  r.extra = lines;
  r.loom = std::filesystem::read_symlink("/proc/self/exe").string();
  cluster::slurm::script s;
  try {
    s = cluster::slurm::make_script(*g, *kinds, r);
  } catch (const std::exception& e) {
    print_error(e.what());  // it names the file, line and column
    return invalid;
  }
  if (!options.output.empty()) {
    std::ofstream out(options.output);
    out << s.text;
    if (!out) {
      print_error(fmt::format("cannot write {}", options.output));
      return run_failed;
    }
    std::filesystem::permissions(options.output, std::filesystem::perms::owner_exec | std::filesystem::perms::group_exec,
                                 std::filesystem::perm_options::add);
    std::fprintf(stderr, "loom: wrote %s (%d task%s of %d CPU%s)\n", options.output.c_str(), s.tasks,
                 s.tasks == 1 ? "" : "s", s.cpus_per_task, s.cpus_per_task == 1 ? "" : "s");
  }
  if (!options.submit) {
    if (options.output.empty()) std::printf("%s", s.text.c_str());
    return ok;
  }
  // sbatch reads the script on its stdin; its own output ("Submitted batch job N") goes to ours.
  int in[2];
  if (pipe(in) != 0) return run_failed;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[0]), close(in[1]);
    execlp("sbatch", "sbatch", static_cast<char*>(nullptr));
    std::fprintf(stderr, "loom: error: cannot run sbatch: is Slurm installed?\n");
    _exit(127);
  }
  close(in[0]);
  std::size_t done = 0;
  while (done < s.text.size()) {
    auto n = write(in[1], s.text.data() + done, s.text.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  close(in[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok;
  print_error(fmt::format("sbatch did not take the script ({})",
                          WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status)) : "killed"));
  return run_failed;
}

}  // namespace loom::cli
