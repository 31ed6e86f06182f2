// runtime/transport/stand_in.cpp: stand-in actors and the receiver.
#include "runtime/transport/stand_in.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace loom::transport {
namespace {

struct stand_in_state {
  stream_numbering numbering;
};

}  // namespace

caf::behavior stand_in(caf::event_based_actor* self, stand_in_config cfg) {
  auto state = std::make_shared<stand_in_state>();
  auto forward = [self, cfg, state](body msg) {
    auto fail = [&](const std::string& why) {
      spdlog::error("stand-in of instance {} (run {}): {}", cfg.instance, cfg.run, why);
      if (cfg.on_error) cfg.on_error(why);
    };
    auto sender = self->current_sender();
    auto it = sender ? cfg.senders->find(sender->id()) : cfg.senders->end();
    if (it == cfg.senders->end()) {
      fail(fmt::format("message from actor {} that is no local node instance: not sent",
                       sender ? sender->id() : caf::actor_id{0}));
      return;
    }
    envelope e{cfg.run, it->second, cfg.instance, 0, std::move(msg)};
    e.seq = state->numbering.next(e.stream());
    try {
      cfg.endpoint->send(cfg.peer, e);
    } catch (const std::exception& ex) {
      fail(fmt::format("{}: {}", to_string(e.stream()), ex.what()));
    }
  };
  return {
      [forward](local::batch_msg& m) { forward(std::move(m)); },
      [forward](local::credit_msg& m) { forward(m); },
      [forward](local::eos_msg& m) { forward(m); },
      [forward](local::call_msg& m) { forward(std::move(m)); },
      [forward](local::reply_msg& m) { forward(std::move(m)); },
      // A caller's cancel of a call it gave up on is not carried across hosts yet: the remote tool runs
      // the call and the caller drops its late reply (counted as late in the summary).
      [](const local::cancel_call_msg&) {},
  };
}

receiver::receiver(std::uint64_t run, std::vector<caf::actor> local, std::vector<caf::actor> stand_ins)
    : run_(run), local_(std::move(local)), stand_ins_(std::move(stand_ins)) {}

std::optional<std::string> receiver::deliver(envelope&& e) const {
  if (e.run != run_) return fmt::format("{}: this host runs run {}", to_string(e.stream()), run_);
  if (e.to >= local_.size() || !local_[e.to])
    return fmt::format("{}: instance {} does not live on this host", to_string(e.stream()), e.to);
  if (e.from >= stand_ins_.size() || !stand_ins_[e.from])
    return fmt::format("{}: this host has no stand-in for instance {}", to_string(e.stream()), e.from);
  const auto& src = stand_ins_[e.from];
  const auto& dst = local_[e.to];
  std::visit([&](auto& m) { caf::send_as(src, dst, std::move(m)); }, e.body);
  return std::nullopt;
}

}  // namespace loom::transport
