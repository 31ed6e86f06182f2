// cli/approve.cpp: `loom approve DIR NODE [--id N | --all] [--reject [--reason S] | --value JSON]`: a person's
// decision about values a run holds (human.approve; docs/durability.md, "People in the loop"). The decision
// is recorded in DIR/state.sqlite first, so it survives any process; a live run's writer thread reads it
// within 250 ms and hands it to the node; a run that stopped (paused, killed) is resumed here, in the
// foreground, unless --no-resume. Only a decision pending in the run's latest snapshot can be given.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/load.hpp"
#include "cli/state.hpp"
#include "loom/runtime/http/decision_body.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/runtime/state/store.hpp"

namespace fs = std::filesystem;

namespace loom::cli {

std::string who_decides() {
  const char* user = std::getenv("USER");
  if (!user || !*user)
    if (const auto* pw = ::getpwuid(::geteuid())) user = pw->pw_name;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return fmt::format("{}@{}", user && *user ? user : "?", host[0] ? host : "?");
}

std::string record_decision(const fs::path& dir, const state::decision_record& d) {
  try {
    auto st = state::store::open(dir, state::store::access::read_write);
    if (!st.latest_id()) return fmt::format("the run in {} has no snapshot yet: no decision is pending", dir.string());
    bool pending = false;
    for (const auto& p : st.read_latest().pending) pending |= p.instance == d.instance && p.id == d.id;
    if (!pending) return fmt::format("decision {} of instance {} is not pending in {}", d.id, d.instance, dir.string());
    st.decide(d);
    return {};
  } catch (const state::error& e) {
    return e.what();
  }
}

namespace {

// "review", or "review[1]" for one replica: the pending decisions it names.
bool names(const state::pending_record& p, const std::string& node) {
  if (p.node == node) return true;
  auto bracket = p.node.find('[');
  return bracket != std::string::npos && p.node.compare(0, bracket, node) == 0 && bracket == node.size();
}

}  // namespace

std::string pending_by_node(const std::vector<state::pending_record>& pending, bool counts) {
  std::map<std::string, std::vector<std::uint64_t>> by_node;
  for (const auto& p : pending) by_node[p.node].push_back(p.id);
  std::string out;
  for (const auto& [node, ids] : by_node)
    out += fmt::format("{}{}`{}` (id{} {})", out.empty() ? "" : ", ", counts ? fmt::format("{} at ", ids.size()) : "",
                       node, ids.size() > 1 ? "s" : "", fmt::join(ids, ", "));
  return out;
}

const state::decision_record* recorded_for(const std::vector<state::decision_record>& recorded,
                                           const state::pending_record& p) {
  for (const auto& d : recorded)
    if (d.instance == p.instance && d.id == p.id) return &d;
  return nullptr;
}

int approve_command(const common_options& common, const approve_options& options) {
  fs::path dir = options.dir;
  std::vector<state::pending_record> chosen;
  bool live = false;
  try {
    auto st = state::store::open(dir, state::store::access::read_write);
    if (st.meta("status").value_or("") == "finished") {
      print_error(fmt::format("the run in {} has finished: nothing waits for a decision", dir.string()));
      return invalid;
    }
    if (!st.latest_id()) {
      print_error(fmt::format("the run in {} has no snapshot yet: no decision is pending", dir.string()));
      return invalid;
    }
    auto pending = st.read_latest().pending;
    // A decision recorded and not yet taken by a run is given: --all leaves it, --id refuses it.
    auto recorded = st.decisions();
    auto given = [&](const state::pending_record& p) { return recorded_for(recorded, p); };
    std::vector<state::pending_record> of_node;
    for (const auto& p : pending)
      if (names(p, options.node) && !(options.all && given(p))) of_node.push_back(p);
    if (of_node.empty()) {
      print_error(fmt::format("node `{}` has no pending decision in {}{}", options.node, dir.string(),
                              pending.empty() ? std::string(" (none is pending)")
                                              : fmt::format(" (pending: {})", pending_by_node(pending))));
      return invalid;
    }
    if (!options.ids.empty()) {
      for (auto id : options.ids) {
        auto it = std::find_if(of_node.begin(), of_node.end(), [&](const auto& p) { return p.id == id; });
        if (it == of_node.end()) {
          print_error(fmt::format("node `{}` has no pending decision {} in {} (pending: {})", options.node, id,
                                  dir.string(), pending_by_node(of_node)));
          return invalid;
        }
        if (const auto* d = given(*it)) {
          print_error(http::already_given(id, it->node, dir.string(), d->verdict, d->by));
          return invalid;
        }
        chosen.push_back(*it);
      }
    } else if (options.all || of_node.size() == 1) {
      chosen = of_node;
    } else {
      print_error(fmt::format("node `{}` has {} pending decisions in {} ({}): give --id N (repeatable) or --all",
                              options.node, of_node.size(), dir.string(), pending_by_node(of_node)));
      return invalid;
    }
    // The replicas of a node number their decisions apart: an id given for `node` must name one instance.
    for (std::size_t i = 0; i < chosen.size(); ++i)
      for (std::size_t j = i + 1; j < chosen.size(); ++j)
        if (chosen[i].id == chosen[j].id && !options.ids.empty()) {
          print_error(fmt::format("decision {} is pending at both `{}` and `{}`: name the replica as NODE[i]",
                                  chosen[i].id, chosen[i].node, chosen[j].node));
          return invalid;
        }
    state::decision_record d;
    d.verdict = options.reject ? "reject" : options.value.empty() ? "approve" : "edit";
    if (!options.value.empty()) {
      try {
        d.edited = read_json_value(options.value, "--value");
      } catch (const std::exception& e) {
        print_error(e.what());
        return invalid;
      }
    }
    d.reason = options.reason;
    d.by = who_decides();
    d.at_unix_ms = unix_ms_now();
    for (const auto& p : chosen) {
      d.instance = p.instance;
      d.id = p.id;
      st.decide(d);
    }
    live = state::store::held(dir);
  } catch (const state::error& e) {
    print_error(e.what());
    return invalid;
  }
  std::vector<std::uint64_t> ids;
  for (const auto& p : chosen) ids.push_back(p.id);
  auto what = fmt::format("{} {} of `{}` (id{} {})", options.reject ? "rejected" : options.value.empty() ? "approved" : "edited",
                          chosen.size() == 1 ? "decision" : fmt::format("{} decisions", chosen.size()), options.node,
                          ids.size() > 1 ? "s" : "", fmt::join(ids, ", "));
  if (live) {
    std::fprintf(stderr, "loom: %s; the live run takes it\n", what.c_str());
    return ok;
  }
  if (options.no_resume) {
    std::fprintf(stderr, "loom: %s; `loom resume %s` continues the run\n", what.c_str(), dir.string().c_str());
    return ok;
  }
  std::fprintf(stderr, "loom: %s; resuming the run\n", what.c_str());
  resume_options r;
  r.dir = options.dir;
  r.quiet = options.quiet;
  return resume_command(common, r);
}

}  // namespace loom::cli
