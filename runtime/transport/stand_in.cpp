// runtime/transport/stand_in.cpp: stand-in actors and the receiver.
#include "loom/runtime/transport/stand_in.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>

namespace loom::transport {
namespace {

// A movable instance's values on one of its in-links, kept until it credits them (to send them again to
// its replacement), with the index of each batch's first value.
struct kept_link {
  caf::actor producer;     // its producer's actor here (what is sent again goes as sent by it)
  std::uint64_t next = 0;  // the index of the next value sent on the link
  std::deque<std::pair<std::uint64_t, std::vector<value>>> batches;
  bool eos = false;
};

// Whether any of `vs` has a payload (a string, list, map, bytes or tensor); scalars have none.
bool has_payload(const std::vector<value>& vs) {
  return std::any_of(vs.begin(), vs.end(), [](const value& v) { return v.kind() >= value::type::string; });
}

// Batches of one link waiting to go as one envelope: the first as it came, the values (and lineage tags)
// of those after it beside it. Scalars go as they are, the first batch as the envelope's body and the
// others' values after it (envelope::more: the codec writes them as one batch, nothing is copied); values
// with payloads are joined once into a vector of the exact size and cut into pieces (cut()). (Appending each
// batch as it came moved every value again at each doubling of the vector: a tenth of a busy hop's CPU;
// joining the scalars into one vector before encoding them, most of a busy egress's time.)
struct joining {
  local::batch_msg head;
  std::vector<std::vector<value>> rest;
  std::vector<local::lineage_tags> rest_tags;  // beside rest when head is tagged

  joining(local::batch_msg b) : head(std::move(b)) {}
  void add(local::batch_msg&& b) {
    rest.push_back(std::move(b.values));
    if (!b.tags.empty()) rest_tags.push_back(std::move(b.tags));
  }
  // No value has a payload: nothing to cut, the batches go as they are.
  bool scalars() const {
    return !has_payload(head.values) &&
           std::none_of(rest.begin(), rest.end(), [](const std::vector<value>& vs) { return has_payload(vs); });
  }
  // Sends the batches: send(body, more) once for scalars, else once per piece of the joined batch.
  template <class Send>
  void send(Send&& send_one);
  local::batch_msg take() {
    if (rest.empty()) return std::move(head);
    auto n = head.values.size();
    for (const auto& r : rest) n += r.size();
    head.values.reserve(n);
    for (auto& r : rest) head.values.insert(head.values.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
    for (const auto& t : rest_tags) head.tags.append(t);
    rest.clear();
    rest_tags.clear();
    return std::move(head);
  }
};

struct stand_in_state {
  stream_numbering numbering;
  peer_id peer = 0;
  // A movable instance's stand-in only:
  std::map<local::link_id, kept_link> kept;                   // by the instance's in-link
  std::unordered_map<std::uint64_t, local::link_id> in_link_of;  // producer << 32 | its out-link -> in-link
  bool holding = false;   // rewired, waiting for resume_msg
  caf::actor local;       // the instance moved here
  std::vector<local::link_id> awaiting;  // out-links whose local consumer has not answered the replacement
  std::vector<std::pair<caf::actor, body>> waiting;  // what came while holding, other than kept values
  // An instance that does not move: batches that queued up in the mailbox behind the one being handled
  // wait here and go out joined, one envelope per run of batches of one sender on one link.
  std::vector<std::pair<caf::actor, joining>> joined;
  bool flush_sent = false;  // a coalesce_atom is on its way to this actor
};

using coalesce_atom = caf::atom_constant<caf::atom("coalesce")>;

// A batch of values with payloads in the header (strings, lists, maps, and bytes and tensors under the
// codec's inline limit) is cut into envelopes of about this many header bytes each, so that a link's
// window of thousands of values never makes one header part pass max_message_size. Bytes and tensors
// from the inline limit up travel as parts of their own and count nothing here; scalars are at most 24
// bytes each: a batch of them goes whole.
constexpr std::size_t envelope_bytes = std::size_t{1} << 20;

std::size_t header_bytes(const value& v) {
  auto t = v.kind();
  if (t < value::type::string) return 24;
  auto n = v.payload_size();
  if ((t == value::type::bytes || t == value::type::tensor) && n >= encode_options{}.inline_limit) return 24;
  return n + 24;
}

// The pieces of `b`, in order, each of about envelope_bytes at most (and at least one value). A piece
// keeps its values' lineage tags and input indices (a movable instance's batches): each piece is then the
// batch the producer would have sent had it sent smaller ones.
std::vector<local::batch_msg> cut(local::batch_msg&& b) {
  std::vector<local::batch_msg> out;
  auto& vs = b.values;
  if (!has_payload(vs)) {
    out.push_back(std::move(b));
    return out;
  }
  std::size_t start = 0, bytes = 0;
  auto piece = [&](std::size_t end) {
    local::batch_msg p{b.link, {}, b.first == local::no_index ? local::no_index : b.first + start, {}, b.to};
    p.values.assign(std::make_move_iterator(vs.begin() + static_cast<std::ptrdiff_t>(start)),
                    std::make_move_iterator(vs.begin() + static_cast<std::ptrdiff_t>(end)));
    if (b.tags.size() == vs.size()) p.tags = b.tags.slice(start, end);
    out.push_back(std::move(p));
    start = end;
    bytes = 0;
  };
  for (std::size_t i = 0; i < vs.size(); ++i) {
    auto n = header_bytes(vs[i]);
    if (i > start && bytes + n > envelope_bytes) piece(i);
    bytes += n;
  }
  piece(vs.size());
  return out;
}

template <class Send>
void joining::send(Send&& send_one) {
  if (!rest.empty() && scalars()) {
    for (const auto& t : rest_tags) head.tags.append(t);
    rest_tags.clear();
    send_one(std::move(head), std::move(rest));
    rest.clear();
    return;
  }
  for (auto& piece : cut(take())) send_one(std::move(piece), {});
}

// Drops the first n kept values of a link (its instance credited them).
void let_go(kept_link& k, std::uint64_t n) {
  while (n > 0 && !k.batches.empty()) {
    auto& [first, values] = k.batches.front();
    if (values.size() <= n) {
      n -= values.size();
      k.batches.pop_front();
    } else {
      values.erase(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n));
      first += n;
      n = 0;
    }
  }
}

}  // namespace

caf::behavior stand_in(caf::event_based_actor* self, stand_in_config cfg) {
  auto state = std::make_shared<stand_in_state>();
  state->peer = cfg.peer;
  if (cfg.movable && cfg.plan && cfg.instance < cfg.plan->instances.size()) {
    const auto& links = cfg.plan->instances[cfg.instance].in_links;
    for (local::link_id l = 0; l < links.size(); ++l)
      state->in_link_of[std::uint64_t{links[l].producer} << 32 | links[l].remote] = l;
  }
  auto fail = [cfg](const std::string& why) {
    spdlog::error("stand-in of instance {} (run {}): {}", cfg.instance, cfg.run, why);
    if (cfg.on_error) cfg.on_error(why);
  };
  // To the instance's host (or, once it moved here, to its actor), as sent by `sender`. Gives the message
  // back once sent to the host (the endpoint encodes it there and then, and keeps the bytes), so a
  // movable instance's stand-in keeps the values it sent without copying them first; moved from when it
  // went to a local actor. `more` (envelope::more) comes only from the joined batches of an instance that
  // does not move, whose stand-in never has a local actor.
  auto send = [cfg, state, fail](const caf::actor& sender, body msg,
                                 std::vector<std::vector<value>> more = {}) -> body {
    if (state->local) {
      std::visit([&](auto& m) { caf::send_as(sender, state->local, std::move(m)); }, msg);
      return msg;
    }
    auto it = sender ? cfg.senders->find(sender.id()) : cfg.senders->end();
    if (it == cfg.senders->end()) {
      fail(fmt::format("message from actor {} that is no local node instance: not sent", sender ? sender.id() : caf::actor_id{0}));
      return msg;
    }
    envelope e{cfg.run, it->second, cfg.instance, 0, std::move(msg)};
    e.more = std::move(more);
    e.seq = state->numbering.next(e.stream());
    try {
      cfg.endpoint->send(state->peer, e);
    } catch (const std::exception& ex) {
      fail(fmt::format("{}: {}", to_string(e.stream()), ex.what()));
    }
    return std::move(e.body);
  };
  // What waits to be joined goes now, in the order it came (before anything else of its streams).
  auto flush_joined = [state, send] {
    auto joined = std::move(state->joined);
    state->joined.clear();
    for (auto& entry : joined) {  // (not a structured binding: clang 14 cannot capture one in a lambda)
      const auto& sender = entry.first;
      entry.second.send(
          [&](body msg, std::vector<std::vector<value>> more) { send(sender, std::move(msg), std::move(more)); });
    }
  };
  auto forward = [self, cfg, state, send, flush_joined](body msg) {
    auto sender = caf::actor_cast<caf::actor>(self->current_sender());
    if (!cfg.movable) {
      // Several batches per envelope: a batch joins the one before it when both come from the same
      // sender on the same link (no lineage, no index: an instance that does not move). The joined values
      // never pass the link's capacity: every one of them is still uncredited. The batch goes at once when
      // nothing else waits in the mailbox; otherwise when the mailbox is drained (coalesce_atom). Anything
      // else first sends what waits, so each stream keeps its order.
      auto& st = *state;
      auto* b = std::get_if<local::batch_msg>(&msg);
      if (!b || !b->tags.empty() || b->first != local::no_index) {
        flush_joined();
        if (b)
          for (auto& piece : cut(std::move(*b))) send(sender, std::move(piece));
        else
          send(sender, std::move(msg));
        return;
      }
      if (!st.joined.empty() && st.joined.back().first == sender && st.joined.back().second.head.link == b->link) {
        st.joined.back().second.add(std::move(*b));
      } else {
        st.joined.emplace_back(sender, joining(std::move(*b)));
      }
      if (self->mailbox().empty()) {
        flush_joined();
      } else if (!st.flush_sent) {
        st.flush_sent = true;
        self->send(self, coalesce_atom::value);
      }
      return;
    }
    {
      auto& st = *state;
      auto keep = [&](local::link_id link) -> kept_link& {
        auto& k = st.kept[link];
        k.producer = sender;
        return k;
      };
      if (auto* b = std::get_if<local::batch_msg>(&msg)) {
        auto& k = keep(b->link);
        b->first = k.next;
        k.next += b->values.size();
        if (st.holding) {  // goes at resume, from what is kept
          k.batches.emplace_back(b->first, std::move(b->values));
          return;
        }
        bool kept = !st.local;
        for (auto& piece : cut(std::move(*b))) {
          auto first = piece.first;
          auto sent = send(sender, std::move(piece));
          if (kept) k.batches.emplace_back(first, std::move(std::get<local::batch_msg>(sent).values));
        }
        return;
      } else if (auto* e = std::get_if<local::eos_msg>(&msg)) {
        keep(e->link).eos = true;
        if (st.holding) return;
      } else {
        if (auto* c = std::get_if<local::credit_msg>(&msg))
          if (std::find(st.awaiting.begin(), st.awaiting.end(), c->link) != st.awaiting.end())
            return;  // for the old instance, from before its consumer heard of the replacement: dropped
        if (st.holding) {
          st.waiting.emplace_back(sender, std::move(msg));
          return;
        }
      }
    }
    send(sender, std::move(msg));
  };
  return {
      [forward](local::batch_msg& m) { forward(std::move(m)); },
      [forward](local::credit_msg& m) { forward(m); },
      [forward](local::eos_msg& m) { forward(m); },
      [forward](local::barrier_msg& m) { forward(m); },
      [forward](local::call_msg& m) { forward(std::move(m)); },
      [forward](local::reply_msg& m) { forward(std::move(m)); },
      // A caller gave up on a call (timeout, restart, stop): the remote tool must not start it.
      [forward](const local::cancel_call_msg& m) { forward(m); },
      [state, flush_joined](coalesce_atom) {
        state->flush_sent = false;
        flush_joined();
      },
      [state](const credited_msg& m) {
        auto it = state->in_link_of.find(std::uint64_t{m.producer} << 32 | m.link);
        if (it == state->in_link_of.end()) return;
        auto k = state->kept.find(it->second);
        if (k != state->kept.end()) let_go(k->second, m.credits);
      },
      [self, state](rewire_msg& m) {
        auto& st = *state;
        st.holding = true;
        st.peer = m.peer;
        st.local = m.local;
        st.numbering = {};  // the new host numbers our streams from 0
        for (auto& c : m.consumers) {
          st.awaiting.push_back(c.out_link);
          self->send(c.actor, local::producer_replaced_msg{c.in_link});
        }
      },
      [state](const local::replaced_ack_msg& m) { std::erase(state->awaiting, m.link); },
      [cfg, state, send](resume_msg) {
        auto& st = *state;
        if (!st.holding) return;
        st.holding = false;
        std::size_t values = 0;
        for (auto& [link, k] : st.kept) {
          for (auto& [first, vs] : k.batches) {
            values += vs.size();
            for (auto& piece : cut(local::batch_msg{link, vs, first})) send(k.producer, std::move(piece));
          }
          if (k.eos) send(k.producer, local::eos_msg{link});
        }
        if (st.local)  // it lives here now: nothing more to keep (the numbering goes on)
          for (auto& [link, k] : st.kept) k.batches.clear();
        spdlog::info("stand-in of instance {} (run {}): sent again the {} values it had not credited", cfg.instance,
                     cfg.run, values);
        auto waiting = std::move(st.waiting);
        for (auto& [sender, msg] : waiting) send(sender, std::move(msg));
      },
  };
}

caf::behavior egress(caf::event_based_actor* self, egress_config cfg) {
  struct egress_state {
    stream_numbering numbering;
    // Batches that queued up in the mailbox behind the one being handled wait here and go out joined, one
    // envelope per run of batches on one link (their lineage tags joined too): a movable instance flushes
    // its outbox often, and each envelope costs a sequence number, a kept copy and an ack. The joined
    // values never pass the link's capacity (every one of them is still uncredited). Anything else (a
    // credit, an end of stream, a call) first sends what waits, so the endpoint's fence still holds each
    // credit behind every output sent before it.
    std::vector<joining> joined;
    bool flush_sent = false;  // a coalesce_atom is on its way
    // The peers the instance's credits went to so far (its producers' hosts). Its other messages to a peer
    // ask for an ack at once (envelope::ack_now) unless every credit goes to that same peer: there the
    // credit follows them on the same connection and the receiver holds it behind them (credit_gate.hpp),
    // so nobody waits for their ack. Before the first credit, every message asks.
    std::vector<peer_id> credit_peers;
  };
  auto state = std::make_shared<egress_state>();
  auto send = [cfg, state](std::uint32_t to, body msg, std::vector<std::vector<value>> more = {}) {
    if (to >= cfg.peer_of.size() || to >= cfg.remote.size() || !cfg.remote[to]) {
      auto why = fmt::format("egress of instance {} (run {}): a message for instance {}, which is not on another host",
                             cfg.instance, cfg.run, to);
      spdlog::error("{}", why);
      if (cfg.on_error) cfg.on_error(why);
      return;
    }
    envelope e{cfg.run, cfg.instance, to, 0, std::move(msg)};
    e.more = std::move(more);
    e.seq = state->numbering.next(e.stream());
    e.epoch = cfg.epoch;
    auto peer = cfg.peer_of[to];
    auto& cp = state->credit_peers;
    if (std::holds_alternative<local::credit_msg>(e.body)) {
      if (std::find(cp.begin(), cp.end(), peer) == cp.end()) cp.push_back(peer);
    } else {
      e.ack_now = cp.empty() || std::any_of(cp.begin(), cp.end(), [peer](peer_id p) { return p != peer; });
    }
    try {
      cfg.endpoint->send_fenced(peer, e);
    } catch (const std::exception& ex) {
      if (cfg.on_error) cfg.on_error(fmt::format("{}: {}", to_string(e.stream()), ex.what()));
    }
  };
  auto flush_joined = [state, send] {
    auto joined = std::move(state->joined);
    state->joined.clear();
    for (auto& j : joined) {
      auto to = j.head.to;
      j.send([&](body msg, std::vector<std::vector<value>> more) { send(to, std::move(msg), std::move(more)); });
    }
  };
  // Anything but a batch: what waits goes first.
  auto in_order = [send, flush_joined](std::uint32_t to, body msg) {
    flush_joined();
    send(to, std::move(msg));
  };
  return {
      [self, state, flush_joined](local::batch_msg& m) {
        auto& st = *state;
        bool tagged = m.tags.size() == m.values.size();
        auto* last = st.joined.empty() ? nullptr : &st.joined.back().head;
        if (last && last->to == m.to && last->link == m.link && last->first == local::no_index &&
            m.first == local::no_index && (last->tags.size() == last->values.size()) == tagged) {
          if (!tagged) m.tags.clear();  // a partly tagged batch is joined untagged, as before
          st.joined.back().add(std::move(m));
        } else {
          st.joined.emplace_back(std::move(m));
        }
        if (self->mailbox().empty()) {
          flush_joined();
        } else if (!st.flush_sent) {
          st.flush_sent = true;
          self->send(self, coalesce_atom::value);
        }
      },
      [state, flush_joined](coalesce_atom) {
        state->flush_sent = false;
        flush_joined();
      },
      [in_order](const local::credit_msg& m) { in_order(m.to, m); },
      [in_order](const local::eos_msg& m) { in_order(m.to, m); },
      [in_order](const local::barrier_msg& m) { in_order(m.to, m); },
      [in_order](local::call_msg& m) {
        auto to = m.to;
        in_order(to, std::move(m));
      },
      [in_order](const local::cancel_call_msg& m) { in_order(m.to, m); },
  };
}

receiver::receiver(std::uint64_t run, std::vector<caf::actor> local, std::vector<caf::actor> stand_ins,
                   std::shared_ptr<const run_rules> rules)
    : run_(run), local_(std::move(local)), stand_ins_(std::move(stand_ins)), rules_(std::move(rules)) {}

std::optional<std::string> receiver::check(const envelope& e, const std::string& sender_key) const {
  const auto& r = *rules_;
  auto s = [&] { return to_string(e.stream()); };  // for errors only: every envelope passes here
  if (e.from < r.instance_key.size() && !r.instance_key[e.from].empty() && sender_key != r.instance_key[e.from]) {
    auto host = e.from < r.instance_host.size() ? r.instance_host[e.from] : std::string("?");
    return fmt::format("{}: claims to come from host `{}`, but was sent with curve key {}, not `{}`'s key {}", s(),
                       host, sender_key.empty() ? std::string("(none)") : sender_key, host, r.instance_key[e.from]);
  }
  auto it = r.streams.find(run_rules::key(e.from, e.to));
  if (it == r.streams.end()) return fmt::format("{}: no link or call joins instance {} to {} in this run", s(), e.from, e.to);
  const auto& rule = it->second;
  return std::visit(
      [&](const auto& m) -> std::optional<std::string> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, local::batch_msg> || std::is_same_v<T, local::eos_msg> ||
                      std::is_same_v<T, local::barrier_msg>) {
          auto l = rule.in_links.find(m.link);
          if (l == rule.in_links.end())
            return fmt::format("{}: link {} is not an input link of instance {} from instance {}", s(), m.link, e.to,
                               e.from);
          if constexpr (std::is_same_v<T, local::batch_msg>) {
            if (m.values.empty() || static_cast<std::int64_t>(m.values.size()) > l->second)
              return fmt::format("{}: a batch of {} values on link {}, whose capacity is {}", s(), m.values.size(),
                                 m.link, l->second);
          }
        } else if constexpr (std::is_same_v<T, local::credit_msg>) {
          auto l = rule.out_links.find(m.link);
          if (l == rule.out_links.end())
            return fmt::format("{}: credit for link {}, which is not an output link of instance {} to instance {}", s(),
                               m.link, e.to, e.from);
          if (m.credits == 0 || static_cast<std::int64_t>(m.credits) > l->second)
            return fmt::format("{}: {} credits on link {}, whose capacity is {}", s(), m.credits, m.link, l->second);
        } else if constexpr (std::is_same_v<T, local::call_msg>) {
          if (!rule.calls) return fmt::format("{}: a call to instance {}, which is not a tool of instance {}", s(), e.to, e.from);
        } else if constexpr (std::is_same_v<T, local::cancel_call_msg>) {
          if (!rule.calls)
            return fmt::format("{}: a call cancel to instance {}, which is not a tool of instance {}", s(), e.to, e.from);
        } else {
          if (!rule.replies)
            return fmt::format("{}: a reply from instance {}, which is not a tool that instance {} calls", s(), e.from,
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
  // A movable instance's credits also let its stand-in here drop the values they cover.
  if (auto* c = std::get_if<local::credit_msg>(&e.body); c && rules_ && e.from < rules_->movable.size() &&
                                                         rules_->movable[e.from])
    caf::anon_send(src, credited_msg{e.to, c->link, c->credits});
  std::visit([&](auto& m) { caf::send_as(src, dst, std::move(m)); }, e.body);
  return std::nullopt;
}

bool receiver::stale(const envelope& e) const {
  return rules_ && e.from < rules_->epoch.size() && e.epoch < rules_->epoch[e.from];
}

receiver receiver::moved(std::uint32_t instance, std::uint32_t epoch, const std::string& host, const std::string& key,
                         const caf::actor& local) const {
  auto local_actors = local_;
  if (local) {
    if (local_actors.size() <= instance) local_actors.resize(instance + 1);
    local_actors[instance] = local;
  }
  auto rules = rules_ ? std::make_shared<run_rules>(*rules_) : std::shared_ptr<run_rules>{};
  if (rules) {
    if (instance < rules->instance_host.size()) rules->instance_host[instance] = host;
    if (instance < rules->instance_key.size()) rules->instance_key[instance] = key;
    if (rules->epoch.size() <= instance) rules->epoch.resize(instance + 1, 0);
    rules->epoch[instance] = epoch;
  }
  return receiver(run_, std::move(local_actors), stand_ins_, std::move(rules));
}

}  // namespace loom::transport
