// cli/runs_admin.cpp: `loom runs DIR --fork ID --to DIR2 [--set ...]`, `--pin ID`, `--unpin ID` and `--drop`
// (cli/runs_admin.hpp, docs/durability.md "Fork, pin, drop").
//
// A fork is a new run state, made by the same store code as any run's: DIR2's file is created as `loom run
// --state` creates one, the snapshot is read from DIR (read-only, every blob decoded and checked against the
// fork's expanded graph) and written into DIR2 as its only snapshot, and the meta is DIR's with the new --set
// list. `graph_path` is written last: a fork cut short (killed) leaves a DIR2 that `loom resume` refuses as
// damaged and `loom runs DIR2 --drop` removes, never one that would run from the beginning.
#include "cli/runs_admin.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "cli/load.hpp"
#include "cli/state.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/local/plan.hpp"
#include "loom/version.hpp"

namespace fs = std::filesystem;

namespace loom::cli {
namespace {

// A refusal: printed by runs_admin_command, exit 2.
struct refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string text_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw refused(fmt::format("the run's graph file {} cannot be read", p.string()));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The graph as the original run loaded it: its warnings were shown when it ran, so none are printed again.
std::optional<graph::graph> load_quietly(const std::string& file, const registry& kinds,
                                         const std::vector<std::string>& sets) {
  graph::diagnostics diags;
  auto g = graph::load_graph_file(file, diags);
  if (g) {
    for (const auto& s : sets) graph::apply_override(*g, s, diags);
    graph::validate(*g, kinds, diags);
  }
  if (!g || diags.has_errors()) return std::nullopt;
  graph::apply_defaults(*g, kinds);
  return g;
}

// Whether two paths name one file: the same path once symbolic links and `..` are resolved, or (both
// existing) the same inode.
bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ea, eb;
  auto ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  if (!ea && !eb && ca == cb) return true;
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

// The first `n` bytes of `from` as the whole of `to` (made, or replaced), synced to disk.
void copy_prefix(const fs::path& from, const fs::path& to, std::uintmax_t n) {
  auto fail = [](const fs::path& p, const char* doing, int e) {
    throw refused(fmt::format("cannot {} {}: {}", doing, p.string(), std::strerror(e)));
  };
  std::error_code ec;
  if (to.has_parent_path()) fs::create_directories(to.parent_path(), ec);
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail(from, "read", errno);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (out < 0) {
    int e = errno;
    ::close(in);
    fail(to, "write", e);
  }
  std::array<char, 1 << 16> buf{};
  std::uintmax_t done = 0;
  int error = 0;
  const fs::path* at = &from;
  while (done < n && error == 0) {
    auto want = static_cast<std::size_t>(std::min<std::uintmax_t>(buf.size(), n - done));
    auto got = ::read(in, buf.data(), want);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      error = got < 0 ? errno : EIO;  // the file got shorter meanwhile
      break;
    }
    for (std::size_t off = 0; off < static_cast<std::size_t>(got);) {
      auto put = ::write(out, buf.data() + off, static_cast<std::size_t>(got) - off);
      if (put < 0 && errno == EINTR) continue;
      if (put <= 0) {
        error = put < 0 ? errno : EIO;
        at = &to;
        break;
      }
      off += static_cast<std::size_t>(put);
    }
    done += static_cast<std::uintmax_t>(got);
  }
  if (error == 0 && ::fdatasync(out) != 0) {
    error = errno;
    at = &to;
  }
  ::close(in);
  if (::close(out) != 0 && error == 0) {
    error = errno;
    at = &to;
  }
  if (error != 0) fail(*at, at == &from ? "read" : "write", error);
}

// A sink.file instance of the fork whose file starts as the first `bytes` of the original run's.
struct sink_copy {
  std::string node;
  fs::path from, to;
  std::uintmax_t bytes = 0;
};

constexpr const char* file_sink = "sink.file";

int fork_run(const common_options& common, const fs::path& dir, std::int64_t id, const fs::path& to,
             const std::vector<std::string>& added) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  auto st = state::store::open(dir, state::store::access::read_only);  // DIR is never written
  auto snap = st.read(id);
  auto graph_path = need_meta(st, "graph_path");
  std::vector<std::string> old_sets;
  try {
    old_sets = read_json_unordered(need_meta(st, "sets"), st.file().string() + "'s sets")
                   .get<std::vector<std::string>>();
  } catch (const state::error&) {
    throw;
  } catch (const std::exception& e) {
    throw state::error(state::error::kind::damaged,
                       fmt::format("{} is damaged: its --set list: {}", st.file().string(), e.what()));
  }
  // What `loom resume DIR2` will check: this loom, the graph file's text, the expanded graph and kinds.
  if (auto d = state::first_difference(need_meta(st, "loom_version"), loom::version(), "the loom versions"))
    throw refused(*d);
  auto yaml = text_of(graph_path);
  if (auto d = state::first_difference(need_meta(st, "graph_yaml"), yaml,
                                       fmt::format("the graph files ({})", graph_path)))
    throw refused(*d);
  auto sets = merge_sets(old_sets, added);
  auto original = load_quietly(graph_path, *kinds, old_sets);
  if (!original) throw refused(fmt::format("the run's graph {} with its --sets no longer loads", graph_path));
  auto forked = load(graph_path, *kinds, sets);  // its errors printed, each at its place (a --set's: `--set`)
  if (!forked) throw refused("the graph with the fork's --sets does not validate (above)");
  auto before = local::expand(*original, *kinds);
  auto plan = std::make_shared<const local::deployment>(local::expand(*forked, *kinds));
  if (auto d = state::first_difference(need_meta(st, "deployment"), describe_run(before, *kinds),
                                       "the expanded graphs and their kinds"))
    throw refused(*d);  // this loom makes another graph of the run's own file and --sets
  auto description = describe_run(*plan, *kinds);
  // The descriptions name instances, links, capacities and the kinds' declarations, never a node's params:
  // a fork may change any param that keeps the expansion (not one that adds a router's port).
  if (auto d = state::first_difference(need_meta(st, "deployment"), description,
                                       "the expanded graphs and their kinds", "the fork"))
    throw refused(*d + " (a fork must keep every instance, port and link; only params may change)");
  link_numbering links(*plan);
  from_state(snap, *plan, links, st.file());  // the snapshot fits the fork's graph (every row checked)

  // sink.file: never the file of the original run; a moved one starts as the original's first N bytes, N
  // the sink's checkpoint (its file's length at its last write before the snapshot).
  std::vector<sink_copy> copies;
  for (const auto& inst : plan->instances) {
    if (inst.kind != file_sink) continue;
    fs::path path = inst.init.params.get_string("path");
    for (const auto& old : before.instances) {
      if (old.kind != file_sink || !same_file(path, old.init.params.get_string("path"))) continue;
      throw refused(fmt::format(
          "node `{}` ({}) would write {}, the file that the run in {} writes{}: give the fork its own file "
          "with "
          "--set {}.path=FILE",
          inst.init.name, file_sink, path.string(), dir.string(),
          old.init.name == inst.init.name ? "" : fmt::format(" (node `{}`)", old.init.name), inst.init.name));
    }
    const auto* part = [&]() -> const state::part_record* {
      for (const auto& p : snap.parts)
        if (p.instance == inst.index) return &p;
      return nullptr;
    }();
    if (part == nullptr || !part->checkpoint.is_int() || part->checkpoint.as_int() < 0)
      continue;  // starts anew
    std::error_code ec;
    if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
      continue;  // a FIFO, /dev/null: never cut back
    fs::path from = before.instances[inst.index].init.params.get_string("path");
    auto n = static_cast<std::uintmax_t>(part->checkpoint.as_int());
    if (!fs::is_regular_file(from, ec))
      throw refused(
          fmt::format("node `{}` ({}): the run's file {} is not a regular file, so its first {} bytes "
                      "(written before snapshot {}) cannot be copied",
                      inst.init.name, file_sink, from.string(), n, id));
    auto size = fs::file_size(from, ec);
    if (ec || size < n)
      throw refused(
          fmt::format("node `{}` ({}): the run's file {} holds {} bytes, fewer than the {} it had written "
                      "at snapshot {} (it was cut or replaced since)",
                      inst.init.name, file_sink, from.string(), ec ? 0 : size, n, id));
    // Replicas of one sink share its file: it starts as the longest of their prefixes.
    auto same = std::find_if(copies.begin(), copies.end(), [&](const sink_copy& c) { return c.to == path; });
    if (same == copies.end())
      copies.push_back({inst.init.name, from, path, n});
    else
      same->bytes = std::max(same->bytes, n);
  }

  // DIR2, as `loom run --state` makes one. From here on, a failure removes what was made.
  auto made = state::store::create(to);
  std::vector<fs::path> written;
  try {
    auto lock = made.lock();
    for (const auto& c : copies) {
      copy_prefix(c.from, c.to, c.bytes);
      written.push_back(c.to);
    }
    auto keep = st.meta("keep").value_or(std::to_string(state::default_keep));
    std::size_t keep_n = state::default_keep;
    try {
      keep_n = std::max<std::size_t>(1, std::stoul(keep));
    } catch (...) {
    }
    made.write(snap, keep_n);
    made.set_meta("graph_yaml", yaml);
    made.set_meta("sets", nlohmann::json(sets).dump());
    made.set_meta("deployment", description);
    made.set_meta("fingerprint", cluster::fingerprint(description));
    made.set_meta("loom_version", loom::version());
    made.set_meta("created_unix_ms", std::to_string(unix_ms_now()));
    made.set_meta("checkpoint_every_ms", st.meta("checkpoint_every_ms").value_or("1000"));
    made.set_meta("keep", keep);
    made.set_meta("starts", "0");
    made.set_meta("status", "forked");
    made.set_meta("forked_from",
                  fmt::format("{}, snapshot {} (epoch {})", fs::absolute(dir).string(), id, snap.info.epoch));
    made.set_meta("graph_path", graph_path);  // last: without it, DIR2 is no run to resume
  } catch (...) {
    { auto closed = std::move(made); }  // closed and unlocked before it is dropped
    std::error_code ec;
    for (const auto& p : written) fs::remove(p, ec);
    try {
      state::store::drop(to);
    } catch (const state::error&) {
    }
    throw;
  }
  std::string with;
  for (const auto& s : added) with += " --set " + s;
  std::fprintf(stderr, "loom: forked snapshot %lld (epoch %llu) of %s into %s%s; `loom resume %s` runs it\n",
               static_cast<long long>(id), static_cast<unsigned long long>(snap.info.epoch),
               dir.string().c_str(), to.string().c_str(), with.c_str(), to.string().c_str());
  for (const auto& c : copies)
    std::fprintf(stderr, "loom: node `%s` (%s): %s starts as the first %ju bytes of %s\n", c.node.c_str(),
                 file_sink, c.to.string().c_str(), c.bytes, c.from.string().c_str());
  return ok;
}

int pin_snapshot(const fs::path& dir, std::int64_t id, bool pinned) {
  auto st = state::store::open(dir, state::store::access::read_write);
  st.pin(id, pinned);
  std::fprintf(stderr, "loom: snapshot %lld of %s is %s\n", static_cast<long long>(id), dir.string().c_str(),
               pinned ? "pinned: it is never pruned" : "unpinned: it is pruned like the others");
  return ok;
}

int drop_run(const fs::path& dir) {
  try {
    state::store::drop(dir);
  } catch (const state::error& e) {
    if (e.why != state::error::kind::held) throw;
    std::string pid = "?", host = "?";
    try {
      auto st = state::store::open(dir, state::store::access::read_only);
      pid = st.meta("pid").value_or("?");
      host = st.meta("host").value_or("?");
    } catch (const state::error&) {
    }
    throw refused(fmt::format("{} belongs to a live run (pid {} on {}); stop it before dropping its state",
                              dir.string(), pid, host));
  }
  std::fprintf(stderr, "loom: dropped the run's state in %s\n", dir.string().c_str());
  return ok;
}

}  // namespace

std::vector<std::string> merge_sets(const std::vector<std::string>& old,
                                    const std::vector<std::string>& added) {
  auto all = old;
  all.insert(all.end(), added.begin(), added.end());
  auto key = [](const std::string& s) { return s.substr(0, s.find('=')); };
  std::vector<std::string> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    bool replaced = false;  // by a later one of the same node.param
    for (std::size_t j = i + 1; j < all.size() && !replaced; ++j) replaced = key(all[j]) == key(all[i]);
    if (!replaced) out.push_back(all[i]);
  }
  return out;
}

void add_runs_admin_options(CLI::App& runs, runs_admin_options& o) {
  auto* fork =
      runs.add_option("--fork", o.fork,
                      "Start a new run state in --to DIR2 from snapshot ID of DIR, with the --set params "
                      "changed (DIR is not changed); `loom resume DIR2` runs it")
          ->check(CLI::PositiveNumber);
  auto* to = runs.add_option("--to", o.to, "With --fork: the new run's state directory");
  auto* set =
      runs.add_option("--set", o.sets, "With --fork: override a param, node.param=value (repeatable)");
  auto* pin =
      runs.add_option("--pin", o.pin, "Keep snapshot ID: it is never pruned")->check(CLI::PositiveNumber);
  auto* unpin =
      runs.add_option("--unpin", o.unpin, "Let snapshot ID be pruned again")->check(CLI::PositiveNumber);
  auto* drop = runs.add_flag("--drop", o.drop, "Delete the state of a run that is not live (DIR's files)");
  fork->needs(to);
  to->needs(fork);
  set->needs(fork);
  for (auto* a : {fork, pin, unpin, drop})
    for (auto* b : {fork, pin, unpin, drop})
      if (a != b) a->excludes(b);
  if (auto* json = runs.get_option_no_throw("--json"))
    for (auto* verb : {fork, pin, unpin, drop}) verb->excludes(json);
}

int runs_admin_command(const common_options& common, const std::string& dir_text,
                       const runs_admin_options& o) {
  fs::path dir = dir_text;
  try {
    if (o.fork > 0) return fork_run(common, dir, o.fork, o.to, o.sets);
    if (o.pin > 0) return pin_snapshot(dir, o.pin, true);
    if (o.unpin > 0) return pin_snapshot(dir, o.unpin, false);
    if (o.drop) return drop_run(dir);
  } catch (const refused& e) {
    print_error(o.fork > 0 ? fmt::format("cannot fork snapshot {} of {}: {}", o.fork, dir.string(), e.what())
                           : e.what());
    return invalid;
  } catch (const state::error& e) {
    print_error(o.fork > 0 ? fmt::format("cannot fork snapshot {} of {}: {}", o.fork, dir.string(), e.what())
                           : e.what());
    return invalid;
  } catch (const std::exception& e) {
    print_error(e.what());
    return invalid;
  }
  return invalid;
}

}  // namespace loom::cli
