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
      // A caller gave up on a call (timeout, restart, stop): the remote tool must not start it.
      [forward](const local::cancel_call_msg& m) { forward(m); },
  };
}

receiver::receiver(std::uint64_t run, std::vector<caf::actor> local, std::vector<caf::actor> stand_ins,
                   std::shared_ptr<const run_rules> rules)
    : run_(run), local_(std::move(local)), stand_ins_(std::move(stand_ins)), rules_(std::move(rules)) {}

std::optional<std::string> receiver::check(const envelope& e, const std::string& sender_key) const {
  const auto& r = *rules_;
  auto s = to_string(e.stream());
  if (e.from < r.instance_key.size() && !r.instance_key[e.from].empty() && sender_key != r.instance_key[e.from]) {
    auto host = e.from < r.instance_host.size() ? r.instance_host[e.from] : std::string("?");
    return fmt::format("{}: claims to come from host `{}`, but was sent with curve key {}, not `{}`'s key {}", s,
                       host, sender_key.empty() ? std::string("(none)") : sender_key, host, r.instance_key[e.from]);
  }
  auto it = r.streams.find(run_rules::key(e.from, e.to));
  if (it == r.streams.end()) return fmt::format("{}: no link or call joins instance {} to {} in this run", s, e.from, e.to);
  const auto& rule = it->second;
  return std::visit(
      [&](const auto& m) -> std::optional<std::string> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, local::batch_msg> || std::is_same_v<T, local::eos_msg>) {
          auto l = rule.in_links.find(m.link);
          if (l == rule.in_links.end())
            return fmt::format("{}: link {} is not an input link of instance {} from instance {}", s, m.link, e.to,
                               e.from);
          if constexpr (std::is_same_v<T, local::batch_msg>) {
            if (m.values.empty() || static_cast<std::int64_t>(m.values.size()) > l->second)
              return fmt::format("{}: a batch of {} values on link {}, whose capacity is {}", s, m.values.size(),
                                 m.link, l->second);
          }
        } else if constexpr (std::is_same_v<T, local::credit_msg>) {
          auto l = rule.out_links.find(m.link);
          if (l == rule.out_links.end())
            return fmt::format("{}: credit for link {}, which is not an output link of instance {} to instance {}", s,
                               m.link, e.to, e.from);
          if (m.credits == 0 || static_cast<std::int64_t>(m.credits) > l->second)
            return fmt::format("{}: {} credits on link {}, whose capacity is {}", s, m.credits, m.link, l->second);
        } else if constexpr (std::is_same_v<T, local::call_msg>) {
          if (!rule.calls) return fmt::format("{}: a call to instance {}, which is not a tool of instance {}", s, e.to, e.from);
        } else if constexpr (std::is_same_v<T, local::cancel_call_msg>) {
          if (!rule.calls)
            return fmt::format("{}: a call cancel to instance {}, which is not a tool of instance {}", s, e.to, e.from);
        } else {
          if (!rule.replies)
            return fmt::format("{}: a reply from instance {}, which is not a tool that instance {} calls", s, e.from,
                               e.to);
        }
        return std::nullopt;
      },
      e.body);
}

std::optional<std::string> receiver::deliver(envelope&& e, const std::string& sender_key) const {
  if (e.run != run_) return fmt::format("{}: this host runs run {}", to_string(e.stream()), run_);
  if (e.to >= local_.size() || !local_[e.to])
    return fmt::format("{}: instance {} does not live on this host", to_string(e.stream()), e.to);
  if (e.from >= stand_ins_.size() || !stand_ins_[e.from])
    return fmt::format("{}: this host has no stand-in for instance {}", to_string(e.stream()), e.from);
  if (rules_)
    if (auto why = check(e, sender_key)) return why;
  const auto& src = stand_ins_[e.from];
  const auto& dst = local_[e.to];
  std::visit([&](auto& m) { caf::send_as(src, dst, std::move(m)); }, e.body);
  return std::nullopt;
}

}  // namespace loom::transport
