// tests/fuzz/live_slice.hpp: a live worker slice to throw decoded frames at. The graph `src -> mid -> out`
// is expanded as a worker expands it; `mid` runs here on the local executor (a real node actor), `src` and
// `out` live "elsewhere" (stand-ins that swallow what they get). Every frame goes through the decoder and
// then the same receive boundary a worker uses (transport::receiver with the run's rules), so whatever
// passes the checks really reaches a node actor. When `mid` ends (an end-of-stream got through), the next
// slice starts with a fresh run. Used by fuzz_slice (libFuzzer) and by slice_fuzz_test (a fixed-seed replay
// in the ordinary test run).
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "loom/actors/builtins.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"
#include "loom/runtime/cluster/fingerprint.hpp"
#include "loom/runtime/local/executor.hpp"
#include "loom/runtime/transport/codec.hpp"
#include "loom/runtime/transport/stand_in.hpp"

namespace loom::fuzz {

// Takes the instance it stands for: CAF 0.17 spawns a function with no arguments through a null
// shared_ptr<tuple<>> that it dereferences (UBSan: reference binding to null), so every spawn here passes one.
inline caf::behavior swallow(caf::event_based_actor*, std::uint32_t /*instance*/) {
  return {
      [](local::batch_msg&) {}, [](local::credit_msg&) {}, [](local::eos_msg&) {},
      [](local::call_msg&) {},  [](local::reply_msg&) {}, [](local::cancel_call_msg&) {},
  };
}

class live_slice {
 public:
  live_slice() {
    actors::register_builtins(kinds_);
    cfg_.set("scheduler.max-threads", std::size_t{2});
    system_ = std::make_unique<caf::actor_system>(cfg_);
    thread_ = std::thread([this] { loop(); });
    wait_ready();
  }
  ~live_slice() {
    stop_ = true;
    if (auto c = coordinator()) caf::anon_send(c, local::cancel_atom::value);
    thread_.join();
  }

  // Decodes `parts` and, when it is an envelope, delivers it into the current run (the run id is set to the
  // run's, so the fuzzer need not guess it). Returns whether it reached the node actor.
  bool feed(transport::multipart parts) {
    auto d = transport::decode(std::move(parts));
    if (!d) return false;
    auto* e = std::get_if<transport::envelope>(&*d.msg);
    if (!e) return false;
    wait_ready();
    auto r = std::atomic_load(&receiver_);
    if (!r) return false;
    e->run = run_.load();
    return !r->deliver(std::move(*e));
  }

  std::uint64_t runs() const { return run_.load(); }

 private:
  caf::actor coordinator() {
    std::lock_guard lock(m_);
    return coordinator_;
  }

  void wait_ready() {
    while (!std::atomic_load(&receiver_) && !stop_) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }

  void loop() {
    while (!stop_) {
      graph::diagnostics diags;
      auto g = graph::load_graph_text(
          "graph: slice\nnodes:\n  src: {kind: source.sequence}\n  mid: {kind: flow.forward}\n"
          "  out: {kind: sink.count}\nedges:\n  - {from: src, to: mid, capacity: 8}\n  - {from: mid, to: out, "
          "capacity: 8}\n",
          "slice.yaml", diags);
      graph::validate(*g, kinds_, diags);
      graph::apply_defaults(*g, kinds_);
      auto dep = local::expand(*g, kinds_);
      auto rules = std::make_shared<const transport::run_rules>(cluster::make_rules(dep));
      std::vector<caf::actor> stand_ins(dep.instances.size());
      local::slice_hooks hooks;
      hooks.is_local = [](std::uint32_t i) { return i == 1; };
      hooks.release_tools_locally = true;
      hooks.stand_in = [&](std::uint32_t i, const std::vector<caf::actor>&) {
        return stand_ins[i] = system_->spawn(swallow, i);
      };
      hooks.before_start = [&](const std::vector<caf::actor>& all, const caf::actor& coordinator) {
        std::vector<caf::actor> locals(all.size());
        locals[1] = all[1];
        {
          std::lock_guard lock(m_);
          coordinator_ = coordinator;
        }
        ++run_;
        std::atomic_store(&receiver_, std::make_shared<const transport::receiver>(run_.load(), locals, stand_ins, rules));
        return !stop_;
      };
      local::run_slice(*system_, std::make_shared<const local::deployment>(std::move(dep)), local::run_options{}, hooks);
      std::atomic_store(&receiver_, std::shared_ptr<const transport::receiver>{});
      {
        std::lock_guard lock(m_);
        coordinator_ = caf::actor{};
      }
      for (auto& s : stand_ins)
        if (s) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    }
  }

  registry kinds_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> system_;
  std::mutex m_;
  caf::actor coordinator_;
  std::shared_ptr<const transport::receiver> receiver_;
  std::atomic<std::uint64_t> run_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace loom::fuzz
