// embed/runtime.cpp: the runtime object: an actor system, the kinds, and the four ways to run a graph on
// them (to the end, started and fed, across hosts, served).
#include "loom/embed/runtime.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "loom/embed/detail/program_io.hpp"
#include "loom/graph/emit.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/driver.hpp"
#include "loom/runtime/cluster/session.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/observe/node_probes.hpp"
#include "loom/runtime/placement/planner.hpp"
#include "loom/runtime/serve/server.hpp"

namespace loom {

namespace {

// SIGINT/SIGTERM for the runtimes that opted in: a flag, and the handlers that were there before.
std::atomic<bool> signalled{false};
std::mutex signal_mutex;
int signal_users = 0;
struct sigaction previous_int, previous_term;

extern "C" void on_stop_signal(int) { signalled.store(true, std::memory_order_relaxed); }

void take_signals() {
  std::lock_guard lock(signal_mutex);
  if (signal_users++ > 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &previous_int);
  sigaction(SIGTERM, &sa, &previous_term);
}

void give_signals_back() {
  std::lock_guard lock(signal_mutex);
  if (--signal_users > 0) return;
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  signalled.store(false);  // a later runtime that opts in starts afresh
}

caf::actor_system_config make_config(unsigned threads) {
  caf::actor_system_config cfg;
  auto n = threads ? threads : std::max(2u, std::thread::hardware_concurrency());
  cfg.set("scheduler.max-threads", static_cast<std::size_t>(n));
  return cfg;
}

// Throws graph_error: `what`, then every diagnostic on a line of its own.
[[noreturn]] void fail(const std::string& what, graph::diagnostics diags) {
  auto text = fmt::format("{}:\n{}", what, diags.str());
  throw graph_error(std::move(text), std::move(diags));
}

bool uses_program_io(const graph::graph& g) {
  return std::any_of(g.nodes.begin(), g.nodes.end(), [](const graph::node& n) {
    return n.kind == embed::input_kind_name || n.kind == embed::output_kind_name;
  });
}

}  // namespace

struct runtime::impl {
  explicit impl(runtime_options o) : options(std::move(o)), config(make_config(options.threads)), system(config) {}
  runtime_options options;
  registry kinds;
  caf::actor_system_config config;
  caf::actor_system system;
  std::atomic<std::uint64_t> generation{0};  // interrupt() bumps it: runs started before stop

  std::function<bool()> interrupted_since_now() {
    auto at = generation.load();
    return [this, at] { return generation.load() != at || signalled.load(std::memory_order_relaxed); };
  }

  // Validates (with the overrides) and fills defaults; throws graph_error.
  void prepare(graph::graph& g, const std::vector<std::string>& set) const {
    graph::diagnostics diags;
    for (const auto& s : set) graph::apply_override(g, s, diags);
    graph::validate(g, kinds, diags);
    if (diags.has_errors()) fail(fmt::format("graph `{}` is not valid", g.name), std::move(diags));
    graph::apply_defaults(g, kinds);
  }

  local::run_options local_options(const run_options& o) {
    local::run_options ro;
    ro.interrupted = interrupted_since_now();
    ro.on_progress = o.on_progress;
    ro.progress_every = o.progress_every;
    ro.probes = observe::probes_for();  // tool calls counted in the process's metrics
    return ro;
  }
};

runtime::runtime(runtime_options options) : impl_(std::make_unique<impl>(std::move(options))) {
  // loom's log lines go to stderr (stdout is the graph's: sink.stdout), unless the program has set a default
  // logger of its own (spdlog's built-in one has an empty name).
  if (auto current = spdlog::default_logger(); current && current->name().empty()) {
    static std::once_flag once;
    std::call_once(once, [] {
      auto logger = spdlog::get("loom");
      spdlog::set_default_logger(logger ? logger : spdlog::stderr_color_mt("loom"));
    });
  }
  if (auto level = spdlog::level::from_str(impl_->options.log_level);
      level != spdlog::level::off || impl_->options.log_level == "off")
    spdlog::set_level(level);
  else
    throw std::invalid_argument(fmt::format("runtime_options::log_level: unknown level `{}`", impl_->options.log_level));
  if (impl_->options.builtins) actors::register_builtins(impl_->kinds);
  impl_->kinds.add(embed::unbound_input_kind());
  impl_->kinds.add(embed::unbound_output_kind());
  for (const auto& p : impl_->options.plugins) load_plugin(impl_->kinds, p);
  if (impl_->options.handle_interrupts) take_signals();
}

runtime::~runtime() {
  interrupt();
  if (impl_->options.handle_interrupts) give_signals_back();
}

registry& runtime::kinds() { return impl_->kinds; }
const registry& runtime::kinds() const { return impl_->kinds; }

graph::graph runtime::load(const std::string& path, const std::vector<std::string>& set) const {
  graph::diagnostics diags;
  auto g = graph::load_graph_file(path, diags);
  if (!g) fail(fmt::format("{} does not load", path), std::move(diags));
  impl_->prepare(*g, set);
  return std::move(*g);
}

graph::graph runtime::load_text(std::string_view yaml, const std::string& name,
                                const std::vector<std::string>& set) const {
  graph::diagnostics diags;
  auto g = graph::load_graph_text(yaml, name, diags);
  if (!g) fail(fmt::format("{} does not load", name), std::move(diags));
  impl_->prepare(*g, set);
  return std::move(*g);
}

graph::diagnostics runtime::validate(const graph::graph& g) const {
  graph::diagnostics diags;
  graph::validate(g, impl_->kinds, diags);
  return diags;
}

run_report runtime::run(graph::graph g, const run_options& options) {
  impl_->prepare(g, options.set);
  if (uses_program_io(g))
    throw graph_error(fmt::format("graph `{}` has program.input/program.output nodes: run it with start()", g.name),
                      {});
  return local::run_graph(impl_->system, g, impl_->kinds, impl_->local_options(options));
}

void runtime::interrupt() { impl_->generation.fetch_add(1); }
bool runtime::interrupted() const { return signalled.load(std::memory_order_relaxed); }

// -- start: a run the program feeds ------------------------------------------------------------------------

}  // namespace loom

namespace loom::embed {

struct run_handle {
  graph::graph g;
  registry kinds;  // the runtime's, with program.input/output bound to `io`
  std::shared_ptr<channels> io = std::make_shared<channels>();
  std::atomic<bool> stop{false};
  std::function<bool()> interrupted;
  std::mutex m;
  std::condition_variable ended_cv;
  std::shared_ptr<const run_report> report;  // set when the run is over
  std::thread thread;

  ~run_handle() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

}  // namespace loom::embed

namespace loom {

running runtime::start(graph::graph g, const run_options& options) {
  impl_->prepare(g, options.set);
  auto h = std::make_shared<embed::run_handle>();
  h->g = std::move(g);
  for (const auto& n : h->g.nodes) {
    if (n.kind != embed::input_kind_name && n.kind != embed::output_kind_name) continue;
    auto capacity = static_cast<std::size_t>(n.params.find("capacity")->as_int());  // defaults applied
    bool in = n.kind == embed::input_kind_name;
    (in ? h->io->inputs : h->io->outputs)[n.name] = std::make_shared<embed::channel>(n.name, capacity, in);
  }
  h->kinds = impl_->kinds;
  h->kinds.replace(embed::input_kind(h->io));
  h->kinds.replace(embed::output_kind(h->io));
  auto ro = impl_->local_options(options);
  ro.interrupted = [outer = ro.interrupted, hp = h.get()] { return hp->stop.load() || outer(); };
  // The thread holds the handle's parts by pointer: the handle joins it before they go.
  h->thread = std::thread([hp = h.get(), ro, &system = impl_->system] {
    run_report r;
    try {
      r = local::run_graph(system, hp->g, hp->kinds, ro);
    } catch (const std::exception& e) {
      r.result = run_report::outcome::failed;
      r.error = e.what();
    }
    auto shared = std::make_shared<const run_report>(std::move(r));
    for (auto* table : {&hp->io->inputs, &hp->io->outputs})
      for (auto& [name, c] : *table) c->end(shared);
    std::lock_guard lock(hp->m);
    hp->report = shared;
    hp->ended_cv.notify_all();
  });
  return running(std::move(h));
}

running::running(running&&) noexcept = default;
running& running::operator=(running&&) noexcept = default;
running::~running() {
  if (h_) h_->stop = true;  // ~run_handle joins, once the last handle (this) lets go
}

input_port running::input_port_of(std::string_view node) const {
  auto it = h_->io->inputs.find(node);
  if (it == h_->io->inputs.end())
    throw std::invalid_argument(fmt::format("graph `{}` has no program.input node `{}`", h_->g.name, node));
  return input_port(it->second);
}

output_port running::output_port_of(std::string_view node) const {
  auto it = h_->io->outputs.find(node);
  if (it == h_->io->outputs.end())
    throw std::invalid_argument(fmt::format("graph `{}` has no program.output node `{}`", h_->g.name, node));
  return output_port(it->second);
}

const run_report& running::wait() {
  std::unique_lock lock(h_->m);
  h_->ended_cv.wait(lock, [&] { return h_->report != nullptr; });
  return *h_->report;
}

const run_report* running::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(h_->m);
  h_->ended_cv.wait_for(lock, timeout, [&] { return h_->report != nullptr; });
  return h_->report.get();
}

bool running::done() const {
  std::lock_guard lock(h_->m);
  return h_->report != nullptr;
}

void running::stop() { h_->stop = true; }
const graph::graph& running::graph() const { return h_->g; }

// -- run_cluster -------------------------------------------------------------------------------------------

run_report runtime::run_cluster(graph::graph g, const cluster_options& cluster, const run_options& options) {
  impl_->prepare(g, options.set);
  if (uses_program_io(g))
    throw graph_error(fmt::format("graph `{}` has program.input/program.output nodes: those run only in this "
                                  "process, with start()", g.name), {});
  auto interrupted = impl_->interrupted_since_now();
  cluster::host_source_options so;
  so.plugins = impl_->options.plugins;
  so.log = cluster.log;
  so.interrupted = interrupted;
  so.insecure = cluster.insecure;
  so.worker_command = cluster.slurm_worker_command;
  cluster::session session(cluster.cluster, so);
  graph::diagnostics diags;
  if (!session.hosts(diags)) fail(fmt::format("{}: no hosts", session.describe()), std::move(diags));
  if (!session.plan(g, impl_->kinds, diags))
    fail(fmt::format("no plan of `{}` on {}", g.name, session.describe()), std::move(diags));
  cluster::driver_options o;
  o.kinds = &impl_->kinds;
  o.connect_timeout = cluster.connect_timeout;
  o.log = cluster.log;
  o.on_progress = options.on_progress;
  o.interrupted = interrupted;
  auto report = session.run(g, o);
  session.stop();
  return report;
}

// -- serve -------------------------------------------------------------------------------------------------

struct server::state {
  std::unique_ptr<serve::server> s;
  int port = 0;
  std::thread thread;
  std::once_flag stopped;
  ~state() {
    std::call_once(stopped, [&] { s->stop(); });
    if (thread.joinable()) thread.join();
  }
};

server::server(std::unique_ptr<state> s) : s_(std::move(s)) {}
server::server(server&&) noexcept = default;
server& server::operator=(server&&) noexcept = default;
server::~server() = default;
int server::port() const { return s_->port; }
void server::stop() {
  if (s_) std::call_once(s_->stopped, [&] { s_->s->stop(); });
}

server runtime::serve(graph::graph g, const serve_options& options) {
  impl_->prepare(g, {});
  serve::server_options so;
  so.host = options.host;
  so.port = options.port;
  so.max_concurrent = options.max_concurrent;
  so.api_key = options.api_key;
  auto st = std::make_unique<server::state>();
  try {
    st->s = std::make_unique<serve::server>(impl_->system, impl_->kinds, g,
                                            serve::endpoints{options.input, options.output}, so);
  } catch (const serve::setup_error& e) {
    throw graph_error(e.what(), {});
  }
  st->port = st->s->bind();
  st->thread = std::thread([s = st->s.get()] { s->run(); });
  return server(std::move(st));
}

}  // namespace loom
