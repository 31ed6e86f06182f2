// cli/state.cpp: durable runs (docs/durability.md): the conversion between the runtime's snapshots and the
// state file's records, and the writer thread. `loom resume` and `loom runs` are in cli/resume.cpp.
#include "cli/state.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/load.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/json.hpp"
#include "loom/runtime/json_reader.hpp"
#include "loom/version.hpp"

namespace fs = std::filesystem;

namespace loom::cli {
namespace {

state::phase phase_to_state(local::instance_part::phase p) {
  switch (p) {
    case local::instance_part::phase::running: return state::phase::running;
    case local::instance_part::phase::finishing: return state::phase::finishing;
    case local::instance_part::phase::finished: return state::phase::finished;
  }
  return state::phase::running;
}

}  // namespace

std::string read_text(const fs::path& p, bool& ok) {
  std::ifstream in(p, std::ios::binary);
  ok = static_cast<bool>(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

state::run_lock take_lock(state::store& st) {
  for (int tries = 0;; ++tries) {
    try {
      return st.lock();
    } catch (const state::error& e) {
      if (e.why != state::error::kind::held || tries >= 5) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

std::string need_meta(const state::store& st, const char* key) {
  auto v = st.meta(key);
  if (!v)
    throw state::error(state::error::kind::damaged,
                       fmt::format("{} is damaged: its meta has no `{}`", st.file().string(), key));
  return *v;
}

long meta_number(const state::store& st, const char* key, long fallback) {
  auto v = st.meta(key);
  if (!v) return fallback;
  try {
    return std::stol(*v);
  } catch (...) {
    return fallback;
  }
}

link_numbering::link_numbering(const local::deployment& d) {
  std::uint32_t n = 0;
  for (const auto& inst : d.instances) {
    first_in.push_back(n);
    for (std::size_t k = 0; k < inst.in_links.size(); ++k)
      consumer.emplace_back(inst.index, static_cast<local::link_id>(k));
    n += static_cast<std::uint32_t>(inst.in_links.size());
  }
  producer.assign(n, {0, 0});
  out.resize(d.instances.size());
  for (const auto& inst : d.instances) {
    local::link_id k = 0;  // the producer's out-link order (executor.cpp: port, edge, replica)
    for (const auto& edges : inst.out_ports)
      for (const auto& edge : edges)
        for (const auto& l : edge.links) {
          auto number = first_in.at(l.consumer) + l.remote;
          out[inst.index].push_back(number);
          producer.at(number) = {inst.index, k++};
        }
  }
}

std::string describe_run(const local::deployment& d, const registry& kinds) {
  return cluster::describe_deployment(d) + cluster::describe_kinds(kinds, d);
}

state::snapshot to_state(const local::snapshot& s, const link_numbering& links, const local::deployment& d) {
  state::snapshot out;
  out.info.epoch = s.epoch;
  out.info.taken_unix_ms = unix_ms_now();
  out.info.reason = s.pending > 0 ? "pause" : "tick";
  for (std::uint32_t i = 0; i < s.parts.size(); ++i) {
    const auto& p = s.parts[i];
    if (!p) continue;
    state::part_record r;
    r.instance = i;
    r.phase = phase_to_state(p->state);
    r.checkpoint = p->checkpoint;
    value_list replay;
    for (const auto& x : p->replay)
      replay.emplace_back(value_list{x.close, static_cast<std::uint64_t>(x.port), x.v});
    r.replay = value(std::move(replay));
    value_list to_close;
    for (auto port : p->to_close) to_close.emplace_back(static_cast<std::uint64_t>(port));
    r.closed = value(value_map{{"to_close", value(std::move(to_close))}, {"pulled_all", p->pulled_all}});
    out.parts.push_back(std::move(r));
    for (const auto& rec : p->inputs) {
      if (rec.values.empty() && !rec.eos && !rec.ended) continue;
      out.links.push_back({links.first_in.at(i) + rec.link, state::side::consumer, rec.eos, rec.ended, rec.values});
    }
    for (const auto& u : p->outputs)
      out.links.push_back({links.out.at(i).at(u.link), state::side::producer, false, false, u.values});
    for (const auto& q : p->pending)
      out.pending.push_back({i, q.id, local::instance_name(d, i), q.shown, q.asked_unix_ms, q.deadline_unix_ms});
  }
  return out;
}

std::shared_ptr<const local::snapshot> from_state(const state::snapshot& s, const local::deployment& d,
                                                  const link_numbering& links, const fs::path& file) {
  auto damaged = [&](const std::string& where, const std::string& why) {
    return state::error(state::error::kind::damaged,
                        fmt::format("{} is damaged: snapshot {}, {}: {}", file.string(), s.info.id, where, why));
  };
  auto snap = std::make_shared<local::snapshot>();
  snap->epoch = s.info.epoch;
  std::vector<std::shared_ptr<local::instance_part>> parts(d.instances.size());
  for (const auto& r : s.parts) {
    auto where = [&](const char* field) { return fmt::format("instance {}'s {}", r.instance, field); };
    if (r.instance >= d.instances.size())
      throw damaged(fmt::format("instance {}", r.instance), fmt::format("the run has {} instances", d.instances.size()));
    if (parts[r.instance]) throw damaged(fmt::format("instance {}", r.instance), "it has two parts");
    const auto& plan = d.instances[r.instance];
    auto p = std::make_shared<local::instance_part>();
    p->instance = r.instance;
    p->state = r.phase == state::phase::finished    ? local::instance_part::phase::finished
               : r.phase == state::phase::finishing ? local::instance_part::phase::finishing
                                                    : local::instance_part::phase::running;
    p->checkpoint = r.checkpoint;
    auto port_of = [&](const value& v, const char* field) {
      if (!v.is_int() || v.as_int() < 0 || static_cast<std::size_t>(v.as_int()) >= plan.input_names.size())
        throw damaged(where(field), fmt::format("{} is no input port of {}", to_json_line(v), plan.init.name));
      return static_cast<std::size_t>(v.as_int());
    };
    if (!r.replay.is_list()) throw damaged(where("replay"), "not a list");
    for (const auto& x : r.replay.as_list()) {
      if (!x.is_list() || x.as_list().size() != 3 || !x.as_list()[0].is_bool())
        throw damaged(where("replay"), "an entry is not [close, port, value]");
      const auto& e = x.as_list();
      p->replay.push_back({e[0].as_bool(), port_of(e[1], "replay"), e[2]});
    }
    const value* to_close = r.closed.is_map() ? r.closed.find("to_close") : nullptr;
    const value* pulled_all = r.closed.is_map() ? r.closed.find("pulled_all") : nullptr;
    if (!to_close || !to_close->is_list() || !pulled_all || !pulled_all->is_bool())
      throw damaged(where("closed ports"), "not {to_close: [ports], pulled_all: bool}");
    for (const auto& port : to_close->as_list()) p->to_close.push_back(port_of(port, "closed ports"));
    p->pulled_all = pulled_all->as_bool();
    parts[r.instance] = std::move(p);
  }
  for (std::uint32_t i = 0; i < parts.size(); ++i)
    if (!parts[i]) throw damaged(fmt::format("instance {}", i), "it has no part");
  for (const auto& l : s.links) {
    if (l.link >= links.consumer.size())
      throw damaged(fmt::format("link {}", l.link), fmt::format("the run has {} links", links.consumer.size()));
    if (l.side == state::side::consumer) {
      auto [inst, k] = links.consumer[l.link];
      parts[inst]->inputs.push_back({k, l.values, l.eos, l.ended});
    } else {
      if (l.eos || l.ended) throw damaged(fmt::format("link {}", l.link), "a producer's values with an end of stream");
      auto [inst, k] = links.producer[l.link];
      parts[inst]->outputs.push_back({k, l.values});
    }
  }
  for (const auto& q : s.pending) {
    if (q.instance >= parts.size())
      throw damaged(fmt::format("decision {}", q.id), fmt::format("instance {} is not in the run", q.instance));
    parts[q.instance]->pending.push_back({q.id, q.shown, q.asked_unix_ms, q.deadline_unix_ms});
  }
  snap->parts.assign(parts.begin(), parts.end());
  return snap;
}

// ---------------------------------------------------------------------------------------------- durable_run

std::unique_ptr<durable_run> durable_run::create(const fs::path& dir, const run_options& options,
                                                 const graph::graph& g, const registry& kinds, settings s) {
  std::shared_ptr<const local::deployment> plan;
  try {
    plan = std::make_shared<const local::deployment>(local::expand(g, kinds));
  } catch (const std::exception& e) {
    print_error(e.what());
    return nullptr;
  }
  std::error_code ec;
  auto graph_path = fs::absolute(options.file, ec);
  bool read_ok = false;
  auto yaml = read_text(graph_path, read_ok);
  if (!read_ok) {
    print_error(fmt::format("{}: cannot read the graph file again to keep it in the state", graph_path.string()));
    return nullptr;
  }
  try {
    auto st = state::store::create(dir);
    auto description = describe_run(*plan, kinds);
    st.set_meta("graph_path", graph_path.string());
    st.set_meta("graph_yaml", yaml);
    st.set_meta("sets", nlohmann::json(options.sets).dump());
    st.set_meta("deployment", description);
    st.set_meta("fingerprint", cluster::fingerprint(description));
    st.set_meta("loom_version", loom::version());
    st.set_meta("created_unix_ms", std::to_string(unix_ms_now()));
    st.set_meta("checkpoint_every_ms", std::to_string(s.every.count()));
    st.set_meta("keep", std::to_string(s.keep));
    st.set_meta("detach_on_pause", s.detach_on_pause ? "1" : "0");
    if (!options.cluster.empty()) {  // a cluster run: resumed on the same cluster file's workers
      st.set_meta("cluster", options.cluster == "slurm" ? options.cluster : fs::absolute(options.cluster, ec).string());
      st.set_meta("insecure", options.insecure ? "1" : "0");
    }
    st.set_meta("starts", "1");
    st.set_meta("status", "running");
    auto lock = take_lock(st);  // last: a DIR whose lock exists has its meta
    return std::make_unique<durable_run>(std::move(st), std::move(lock), std::move(plan), s);
  } catch (const state::error& e) {
    print_error(e.what());
    return nullptr;
  }
}

durable_run::durable_run(state::store st, state::run_lock lock, std::shared_ptr<const local::deployment> plan,
                         settings s)
    : store_(std::move(st)), lock_(std::move(lock)), plan_(std::move(plan)), links_(*plan_), settings_(s) {}

durable_run::~durable_run() {
  {
    std::lock_guard g(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void durable_run::arm(local::run_options& ro) {
  start(ro.snapshot_every, ro.on_snapshot, ro.poll_decisions, ro.detach_on_pause);
}

void durable_run::start(std::chrono::milliseconds& every,
                        std::function<void(std::shared_ptr<const local::snapshot>)>& on_snapshot,
                        std::function<std::vector<local::routed_decision>()>& decisions, bool& detach_on_pause) {
  detach_on_pause = settings_.detach_on_pause;
  // Decisions recorded while no process ran the run (`loom approve` of a paused run) go with the first
  // messages, before any snapshot could find the run waiting for them.
  poll_decisions();
  decisions = [this] {
    std::lock_guard g(m_);
    return std::exchange(decided_, {});
  };
  every = settings_.every;
  on_snapshot = [this](std::shared_ptr<const local::snapshot> s) { offer(std::move(s)); };
  writer_ = std::thread([this] { write_loop(); });
}

std::vector<state::pending_record> durable_run::pending() const {
  std::lock_guard g(m_);
  return last_pending_;
}

void durable_run::offer(std::shared_ptr<const local::snapshot> s) {
  {
    std::lock_guard g(m_);
    if (next_) ++replaced_;
    next_ = std::move(s);
  }
  cv_.notify_one();
}

void durable_run::progress(const local::run_report& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& n : r.nodes) {
    auto name = n.replicas > 1 ? fmt::format("{}[{}]", n.node, n.instance) : n.node;
    j[name] = {{"in", n.in}, {"out", n.out}};
  }
  std::lock_guard g(m_);
  progress_ = j.dump();
}

// The decisions recorded since the last look (`loom approve`, another process), for the coordinator.
void durable_run::poll_decisions() {
  std::vector<state::decision_record> rows;
  try {
    rows = store_.decisions(last_decision_row_);
  } catch (const std::exception& e) {
    if (poll_failed_++ == 0) spdlog::warn("the decisions in {} could not be read: {}", store_.file().string(), e.what());
    return;
  }
  if (rows.empty()) return;
  last_decision_row_ = rows.back().row;
  std::lock_guard g(m_);
  for (auto& r : rows) {
    decision d;
    d.what = verdict_of(r.verdict).value_or(decision::verdict::approve);  // the table's CHECK allows no other
    d.edited = std::move(r.edited);
    d.reason = std::move(r.reason);
    d.by = std::move(r.by);
    decided_.push_back({r.instance, r.id, std::move(d)});
  }
}

void durable_run::write_loop() {
  // Decisions are looked for every 250 ms whether or not snapshots keep the thread busy (at a short
  // --checkpoint-every there is always one to write).
  auto next_poll = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
  for (;;) {
    std::shared_ptr<const local::snapshot> s;
    std::string progress;
    {
      std::unique_lock g(m_);
      // Wakes for a snapshot, a stop, or when decisions are due.
      cv_.wait_until(g, next_poll, [&] { return stop_ || next_ != nullptr; });
      if (!next_ && stop_) return;  // stopping with nothing left to write
      s = std::exchange(next_, nullptr);
      progress = progress_;
    }
    if (std::chrono::steady_clock::now() >= next_poll) {
      poll_decisions();
      next_poll = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
    }
    if (!s) continue;
    try {
      auto rec = to_state(*s, links_, *plan_);
      rec.info.progress = progress;
      store_.write(rec, settings_.keep);
      ++written_;
      std::lock_guard g(m_);
      last_pending_ = std::move(rec.pending);
    } catch (const std::exception& e) {
      // The previous snapshot stays the latest; the run goes on (a value that cannot be kept, a full disk).
      if (failed_++ == 0) spdlog::warn("a snapshot could not be written to {}: {}", store_.file().string(), e.what());
    }
  }
}

void durable_run::finish(const local::run_report& r) {
  {
    std::lock_guard g(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  const char* status = r.result == local::run_report::outcome::ok       ? "finished"
                       : r.result == local::run_report::outcome::failed ? "failed"
                       : r.result == local::run_report::outcome::paused ? "paused"
                                                                        : "interrupted";
  try {
    store_.set_meta("status", status);
    store_.set_meta("ended_unix_ms", std::to_string(unix_ms_now()));
    store_.set_meta("error", r.result == local::run_report::outcome::failed ? r.error : std::string());
  } catch (const std::exception& e) {
    print_error(fmt::format("the run's end could not be recorded: {}", e.what()));
  }
  if (failed_ > 0)
    spdlog::warn("{} of {} snapshots could not be written to {}", failed_, failed_ + written_, store_.file().string());
  if (r.result == local::run_report::outcome::paused) {
    // What it waits for, from the snapshot it stopped at (the last one written).
    auto what = pending_by_node(last_pending_, true);
    std::fprintf(stderr, "loom: paused: decisions pending: %s; decide with `loom approve %s NODE [--reject] "
                 "[--value JSON]`, which resumes the run\n",
                 what.c_str(), store_.dir().string().c_str());
  }
}

std::optional<long> parse_duration_ms(const std::string& text) {
  std::size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  auto unit = text.substr(used);
  double scale = unit == "ms" ? 1 : unit == "s" || unit.empty() ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : -1;
  if (scale < 0 || !(n > 0) || n * scale > 1e12) return std::nullopt;
  auto ms = static_cast<long>(n * scale);
  if (ms < 1) return std::nullopt;
  return ms;
}

}  // namespace loom::cli
