// runtime/cluster/slurm_detail.hpp (private): what the Slurm files share: quoting for a shell.
#pragma once

#include <string>

namespace loom::cluster::slurm {

// `s` as one word for a POSIX shell: as is when it is plain (letters, digits, @%+=:,./_-), else in single
// quotes (a log line of the srun command, an sbatch script).
std::string shell_quote(const std::string& s);

}  // namespace loom::cluster::slurm
