// runtime/serve/threads.cpp: the threads of `loom serve --state` (threads.hpp, docs/durability.md).
#include "loom/runtime/serve/threads.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "loom/runtime/node.hpp"

namespace loom::serve {

namespace {

// A DIR of its own: a run's state (`loom run --state`) is refused, not written into.
state::store open_or_create(const std::filesystem::path& dir) {
  try {
    auto s = state::store::open(dir);
    if (s.meta("kind").value_or("") != "serve")
      throw state::error(state::error::kind::mismatch,
                         fmt::format("{} holds a run's state (loom run --state), not loom serve's threads; give "
                                     "loom serve a DIR of its own",
                                     s.file().string()));
    return s;
  } catch (const state::error& e) {
    if (e.why != state::error::kind::missing) throw;
  }
  auto s = state::store::create(dir);
  s.set_meta("kind", "serve");
  return s;
}

std::chrono::milliseconds sweep_period(std::chrono::milliseconds idle) {
  return std::clamp(idle / 2, std::chrono::milliseconds(10), std::chrono::milliseconds(60'000));
}

}  // namespace

std::int64_t thread_memory::now_ms() { return unix_ms_now(); }

thread_memory::thread_memory(const std::filesystem::path& dir, std::chrono::milliseconds idle,
                             const local::deployment& plan)
    : idle_(idle), instances_(plan.instances.size()), store_(open_or_create(dir)), lock_(store_.lock()) {
  for (const auto& in : plan.instances) {
    if (!in.stateful || !in.def->spec.thread_state) continue;
    kept_instance k{in.index, fmt::format("{}#{}", in.init.name, in.init.instance), {}};
    for (std::size_t p = 0; p < in.input_names.size(); ++p)
      if (std::none_of(in.in_links.begin(), in.in_links.end(), [&](const local::in_link_plan& l) { return l.port == p; }))
        k.unfed.push_back(p);
    kept_.push_back(std::move(k));
  }
  sweeper_ = std::jthread([this](std::stop_token stop) {
    auto period = sweep_period(idle_);
    while (!stop.stop_requested()) {
      {
        std::unique_lock l(sweep_m_);
        sweep_cv_.wait_for(l, stop, period, [] { return false; });
      }
      if (stop.stop_requested()) break;
      try {
        if (auto n = sweep(); n > 0) spdlog::info("loom serve: {} idle thread(s) expired", n);
      } catch (const std::exception& e) {
        spdlog::warn("loom serve: expiring idle threads failed: {}", e.what());
      }
    }
  });
}

thread_memory::~thread_memory() {
  sweeper_.request_stop();
  if (sweeper_.joinable()) sweeper_.join();
}

std::vector<std::string> thread_memory::kept() const {
  std::vector<std::string> out;
  for (const auto& k : kept_) out.push_back(k.key);
  return out;
}

const std::filesystem::path& thread_memory::file() const { return store_.file(); }

std::size_t thread_memory::sweep() {
  std::lock_guard l(store_m_);
  return store_.expire_threads(now_ms() - idle_.count());
}

std::shared_ptr<thread_memory::gate> thread_memory::enter(const std::string& id) {
  std::shared_ptr<gate> g;
  {
    std::lock_guard l(gates_m_);
    auto& slot = gates_[id];
    if (!slot) slot = std::make_shared<gate>();
    ++slot->users;
    g = slot;
  }
  g->m.lock();
  return g;
}

void thread_memory::leave(const std::string& id, const std::shared_ptr<gate>& g) {
  g->m.unlock();
  std::lock_guard l(gates_m_);
  if (--g->users == 0) gates_.erase(id);
}

thread_memory::turn thread_memory::begin(const std::string& id) {
  turn t(*this, id);  // holds the gate: a failure below releases it
  if (kept_.empty()) return t;
  std::optional<state::thread_record> row;
  {
    std::lock_guard l(store_m_);
    row = store_.read_thread(id);
  }
  // A row idle past the limit is gone already for this request, whether or not the sweeper has run.
  if (!row || row->updated_unix_ms < now_ms() - idle_.count() || !row->state.is_map()) return t;
  auto snap = std::make_shared<local::snapshot>();
  snap->parts.resize(instances_);
  bool any = false;
  for (const auto& k : kept_) {
    const value* cp = row->state.find(k.key);
    if (cp == nullptr || cp->is_null()) continue;
    auto p = std::make_shared<local::instance_part>();
    p->instance = k.index;
    p->state = local::instance_part::phase::running;
    p->checkpoint = *cp;
    p->to_close = k.unfed;
    snap->parts[k.index] = std::move(p);
    any = true;
  }
  if (any) t.restore_ = std::move(snap);
  return t;
}

thread_memory::turn::turn(thread_memory& m, std::string id) : m_(&m), id_(std::move(id)) { gate_ = m.enter(id_); }

thread_memory::turn::turn(turn&& o) noexcept
    : m_(o.m_), id_(std::move(o.id_)), gate_(std::move(o.gate_)), restore_(std::move(o.restore_)),
      collected_(std::move(o.collected_)) {}

thread_memory::turn::~turn() {
  if (gate_) m_->leave(id_, gate_);
}

void thread_memory::turn::collect(std::uint32_t instance, const value& checkpoint) {
  for (const auto& k : m_->kept_)
    if (k.index == instance) {
      std::lock_guard l(collected_m_);
      collected_.insert_or_assign(k.key, checkpoint);
    }
}

void thread_memory::turn::save() {
  if (m_->kept_.empty()) return;
  value v;
  {
    std::lock_guard l(collected_m_);
    value_map m;
    for (const auto& [k, cp] : collected_) m.emplace_back(k, cp);
    v = value{std::move(m)};
  }
  std::lock_guard l(m_->store_m_);
  m_->store_.write_thread(id_, v, now_ms());
}

}  // namespace loom::serve
