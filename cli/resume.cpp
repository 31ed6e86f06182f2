// cli/resume.cpp: `loom resume DIR` (a run continued from its latest snapshot, after the checks that it is the
// same graph, kinds and loom) and `loom runs DIR` (what a run's state holds), docs/durability.md.
#include <caf/all.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/load.hpp"
#include "cli/state.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/version.hpp"

namespace fs = std::filesystem;

namespace loom::cli {

int resume_command(const common_options& common, const resume_options& options) {
  auto kinds = make_registry(common);
  if (!kinds) return invalid;
  fs::path dir = options.dir;
  try {
    auto st = state::store::open(dir, state::store::access::read_write);
    auto lock = take_lock(st);  // first: nothing is read for a run that another process holds
    if (st.meta("kind").value_or("") == "serve") {
      print_error(fmt::format("{} holds loom serve's threads (loom serve --state), not a run: there is nothing to "
                              "resume; serve it again with loom serve FILE --state {}",
                              st.file().string(), dir.string()));
      return invalid;
    }
    auto status = st.meta("status").value_or("");
    if (status == "finished") {
      std::fprintf(stderr, "loom: the run in %s finished; there is nothing to resume\n", dir.string().c_str());
      return ok;
    }
    auto graph_path = need_meta(st, "graph_path");
    std::vector<std::string> sets;
    try {
      auto j = read_json_unordered(need_meta(st, "sets"), st.file().string() + "'s sets");
      sets = j.get<std::vector<std::string>>();
    } catch (const std::exception& e) {
      throw state::error(state::error::kind::damaged,
                         fmt::format("{} is damaged: its --set list: {}", st.file().string(), e.what()));
    }
    // The same graph file: its text first (an edit is named by its line), then what loom makes of it.
    bool read_ok = false;
    auto yaml = read_text(graph_path, read_ok);
    if (!read_ok) {
      print_error(fmt::format("{}: the run's graph file cannot be read", graph_path));
      return invalid;
    }
    state::require_same(st.file(), need_meta(st, "loom_version"), loom::version(), "the loom versions");
    state::require_same(st.file(), need_meta(st, "graph_yaml"), yaml, fmt::format("the graph files ({})", graph_path));
    auto g = load(graph_path, *kinds, sets);
    if (!g) return invalid;
    auto plan = std::make_shared<const local::deployment>(local::expand(*g, *kinds));
    state::require_same(st.file(), need_meta(st, "deployment"), describe_run(*plan, *kinds),
                        "the expanded graphs and their kinds");

    std::shared_ptr<const local::snapshot> restore;
    link_numbering links(*plan);
    if (st.latest_id()) restore = from_state(st.read_latest(), *plan, links, st.file());
    durable_run::settings s;
    s.every = options.checkpoint_every > 0 ? std::chrono::milliseconds(options.checkpoint_every)
                                           : std::chrono::milliseconds(meta_number(st, "checkpoint_every_ms", 1000));
    s.keep = options.keep > 0 ? options.keep : static_cast<std::size_t>(meta_number(st, "keep", state::default_keep));
    s.detach_on_pause = options.detach_on_pause || meta_number(st, "detach_on_pause", 0) != 0;
    st.set_meta("starts", std::to_string(meta_number(st, "starts", 1) + 1));
    st.set_meta("status", "running");
    if (!options.quiet) {
      if (restore)
        std::fprintf(stderr, "loom: resuming %s from snapshot %lld (epoch %llu)\n", graph_path.c_str(),
                     static_cast<long long>(*st.latest_id()), static_cast<unsigned long long>(restore->epoch));
      else
        std::fprintf(stderr, "loom: %s has no snapshot yet; running %s from the start\n", dir.string().c_str(),
                     graph_path.c_str());
    }
    auto cluster = st.meta("cluster").value_or("");
    bool insecure = meta_number(st, "insecure", 0) != 0;
    durable_run run(std::move(st), std::move(lock), plan, s);
    run_options ro;
    ro.cluster = cluster;  // a cluster run resumes on its workers: the driver re-deploys
    ro.insecure = insecure;
    ro.file = graph_path;
    ro.sets = sets;
    ro.quiet = options.quiet;
    ro.threads = options.threads;
    ro.plugins = common.plugins;
    return run_here(ro, *g, *kinds, &run, restore);
  } catch (const state::error& e) {
    print_error(e.what());
    return invalid;
  }
}

int runs_command(const std::string& dir_text, bool json) {
  fs::path dir = dir_text;
  try {
    auto st = state::store::open(dir, state::store::access::read_only);
    auto snaps = st.list();
    bool live = state::store::held(dir);
    auto now = unix_ms_now();
    if (st.meta("kind").value_or("") == "serve") {  // loom serve --state: its threads, no run
      auto threads = st.thread_count();
      if (json) {
        nlohmann::ordered_json j;
        j["dir"] = dir.string();
        j["kind"] = "serve";
        j["live"] = live;
        if (live) {
          j["pid"] = st.meta("pid").value_or("");
          j["host"] = st.meta("host").value_or("");
        }
        j["threads"] = threads;
        j["bytes_on_disk"] = st.bytes_on_disk();
        std::printf("%s\n", j.dump(2).c_str());
        return ok;
      }
      std::printf("serve:     the threads of loom serve --state\n");
      if (live)
        std::printf("status:    served (live: pid %s on %s)\n", st.meta("pid").value_or("?").c_str(),
                    st.meta("host").value_or("?").c_str());
      else
        std::printf("status:    not served now\n");
      std::printf("threads:   %zu\n", threads);
      std::printf("state:     %s, %.1f KiB on disk\n", st.file().string().c_str(), st.bytes_on_disk() / 1024.0);
      return ok;
    }
    auto status = st.meta("status").value_or("?");
    std::string progress;
    if (!snaps.empty()) progress = snaps.back().progress;
    // The decisions the latest snapshot holds pending, and those recorded for them and not yet taken.
    std::vector<state::pending_record> pending;
    std::vector<state::decision_record> recorded;
    if (!snaps.empty()) {
      pending = st.read_latest().pending;
      recorded = st.decisions();
    }
    if (json) {
      nlohmann::ordered_json j;
      j["dir"] = dir.string();
      j["graph"] = st.meta("graph_path").value_or("");
      j["status"] = status;
      j["live"] = live;
      if (live) {
        j["pid"] = st.meta("pid").value_or("");
        j["host"] = st.meta("host").value_or("");
      }
      j["loom_version"] = st.meta("loom_version").value_or("");
      j["starts"] = meta_number(st, "starts", 1);
      if (auto f = st.meta("forked_from")) j["forked_from"] = *f;  // loom runs --fork (cli/runs_admin.cpp)
      if (auto e = st.meta("error"); e && !e->empty()) j["error"] = *e;
      j["snapshots"] = nlohmann::ordered_json::array();
      for (const auto& s : snaps)
        j["snapshots"].push_back({{"id", s.id},
                                  {"epoch", s.epoch},
                                  {"reason", s.reason},
                                  {"taken_unix_ms", s.taken_unix_ms},
                                  {"age_ms", now - s.taken_unix_ms},
                                  {"pinned", s.pinned}});
      if (!progress.empty()) {
        try {
          j["progress"] = read_json(progress, st.file().string() + "'s progress");
        } catch (const std::exception&) {
          j["progress"] = nullptr;
        }
      }
      j["pending"] = nlohmann::ordered_json::array();
      for (const auto& p : pending) {
        nlohmann::ordered_json e{{"node", p.node},
                                 {"instance", p.instance},
                                 {"id", p.id},
                                 {"shown", to_json(p.shown)},
                                 {"asked_unix_ms", p.asked_unix_ms},
                                 {"deadline_unix_ms", p.deadline_unix_ms}};
        if (const auto* d = recorded_for(recorded, p)) e["decided"] = {{"verdict", d->verdict}, {"by", d->by}};
        j["pending"].push_back(std::move(e));
      }
      j["bytes_on_disk"] = st.bytes_on_disk();
      std::printf("%s\n", j.dump(2).c_str());
      return ok;
    }
    std::printf("run:       %s\n", st.meta("graph_path").value_or("?").c_str());
    if (live)
      std::printf("status:    %s (live: pid %s on %s)\n", status.c_str(), st.meta("pid").value_or("?").c_str(),
                  st.meta("host").value_or("?").c_str());
    else
      std::printf("status:    %s%s\n", status.c_str(),
                  status == "running" ? " (no process holds it: it was killed; loom resume continues it)" : "");
    if (auto e = st.meta("error"); e && !e->empty()) std::printf("error:     %s\n", e->c_str());
    if (auto f = st.meta("forked_from")) std::printf("forked:    from %s\n", f->c_str());
    std::printf("loom:      %s, started %ld time(s)\n", st.meta("loom_version").value_or("?").c_str(),
                meta_number(st, "starts", 1));
    std::printf("state:     %s, %.1f KiB on disk\n", st.file().string().c_str(), st.bytes_on_disk() / 1024.0);
    if (snaps.empty()) std::printf("snapshots: none\n");
    else {
      std::printf("snapshots: %zu\n", snaps.size());
      for (const auto& s : snaps)
        std::printf("  %-6lld epoch %-8llu %-5s %.1f s ago%s\n", static_cast<long long>(s.id),
                    static_cast<unsigned long long>(s.epoch), s.reason.c_str(), (now - s.taken_unix_ms) / 1000.0,
                    s.pinned ? " (pinned)" : "");
    }
    if (!pending.empty()) {
      std::printf("pending decisions (loom approve %s NODE [--id N] [--reject] [--value JSON]):\n", dir.string().c_str());
      for (const auto& p : pending) {
        auto shown = to_json_line(p.shown);
        if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
        std::string deadline = p.deadline_unix_ms > 0 ? fmt::format(", deadline in {:.1f} s", (p.deadline_unix_ms - now) / 1000.0)
                                                      : std::string();
        const auto* d = recorded_for(recorded, p);
        std::printf("  %-16s id %-6llu asked %.1f s ago%s: %s%s\n", p.node.c_str(), static_cast<unsigned long long>(p.id),
                    (now - p.asked_unix_ms) / 1000.0, deadline.c_str(), shown.c_str(),
                    d ? fmt::format(" [{} by {}, not yet taken]", d->verdict, d->by).c_str() : "");
      }
    }
    if (!progress.empty()) {
      try {
        auto p = read_json(progress, st.file().string() + "'s progress");
        std::printf("progress at the latest snapshot (counted since the run's last start):\n");
        for (const auto& [node, c] : p.items())
          std::printf("  %-24s in %-10s out %s\n", node.c_str(), c.value("in", nlohmann::ordered_json()).dump().c_str(),
                      c.value("out", nlohmann::ordered_json()).dump().c_str());
      } catch (const std::exception&) {
      }
    }
    return ok;
  } catch (const state::error& e) {
    print_error(e.what());
    return invalid;
  }
}

}  // namespace loom::cli
