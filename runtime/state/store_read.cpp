// runtime/state/store_read.cpp: reading the state file (store.hpp, docs/durability.md): the list of complete
// snapshots, one snapshot with every row checked (a bad one is a damaged file naming the row), and meta.
#include "loom/runtime/state/store.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "loom/runtime/state/store_detail.hpp"
#include "loom/runtime/state/value_codec.hpp"

namespace loom::state {

using namespace detail;

std::vector<snapshot_info> store::list() const {
  std::vector<snapshot_info> out;
  stmt q(file_, db_, "SELECT id, epoch, taken_unix_ms, reason, pinned, progress FROM snapshots WHERE complete = 1 ORDER BY id");
  while (q.step("listing snapshots"))
    out.push_back({q.i64(0), static_cast<std::uint64_t>(q.i64(1)), q.i64(2), q.text(3), q.i64(4) != 0, q.text(5)});
  return out;
}

std::optional<std::int64_t> store::latest_id() const {
  stmt q(file_, db_, "SELECT max(id) FROM snapshots WHERE complete = 1");
  if (!q.step("finding the latest snapshot") || q.is_null(0)) return std::nullopt;
  return q.i64(0);
}

snapshot store::read_latest() const {
  auto id = latest_id();
  if (!id) throw error(error::kind::damaged, fmt::format("{} is damaged: it holds no complete snapshot", file_.string()));
  return read(*id);
}

snapshot store::read(std::int64_t id) const {
  snapshot s;
  {
    stmt q(file_, db_, "SELECT id, epoch, taken_unix_ms, reason, pinned, progress FROM snapshots WHERE id = ? AND complete = 1");
    q.bind(1, id);
    if (!q.step("reading a snapshot"))
      throw error(error::kind::missing, fmt::format("{} holds no complete snapshot {}", file_.string(), id));
    s.info = {q.i64(0), static_cast<std::uint64_t>(q.i64(1)), q.i64(2), q.text(3), q.i64(4) != 0, q.text(5)};
  }
  auto damaged = [&](const std::string& where, const std::string& what) {
    return error(error::kind::damaged, fmt::format("{} is damaged: snapshot {}, {}: {}", file_.string(), id, where, what));
  };
  auto value_of = [&](std::span<const std::byte> b, const std::string& where) {
    try {
      return decode(b);
    } catch (const decode_error& e) {
      throw damaged(where, e.what());
    }
  };
  auto u32 = [&](std::int64_t v, const std::string& what) {
    if (v < 0 || v > std::int64_t{UINT32_MAX}) throw damaged(what, fmt::format("{} is out of range", v));
    return static_cast<std::uint32_t>(v);
  };
  {
    stmt q(file_, db_, "SELECT instance, phase, checkpoint, replay, closed FROM parts WHERE snapshot = ? ORDER BY instance");
    q.bind(1, id);
    while (q.step("reading a snapshot's parts")) {
      part_record p;
      p.instance = u32(q.i64(0), "a part's instance");
      auto where = [&](const char* field) { return fmt::format("instance {}'s {}", p.instance, field); };
      auto ph = q.i64(1);
      if (ph < 0 || ph > static_cast<std::int64_t>(phase::finished)) throw damaged(where("phase"), fmt::format("{} is no phase", ph));
      p.phase = static_cast<phase>(ph);
      p.checkpoint = value_of(q.bytes(2), where("checkpoint"));
      p.replay = value_of(q.bytes(3), where("replay"));
      p.closed = value_of(q.bytes(4), where("closed ports"));
      s.parts.push_back(std::move(p));
    }
  }
  {
    stmt q(file_, db_, "SELECT link, side, count, eos, ended, vals FROM links WHERE snapshot = ? ORDER BY link, side");
    q.bind(1, id);
    while (q.step("reading a snapshot's links")) {
      link_record l;
      l.link = u32(q.i64(0), "a link's number");
      auto sd = q.i64(1);
      auto where = fmt::format("link {}'s {} values", l.link, sd == 0 ? "consumer" : "producer");
      if (sd != 0 && sd != 1) throw damaged(fmt::format("link {}", l.link), fmt::format("{} is no side", sd));
      l.side = static_cast<side>(sd);
      l.eos = q.i64(3) != 0;
      l.ended = q.i64(4) != 0;
      try {
        l.values = decode_list(q.bytes(5));
      } catch (const decode_error& e) {
        throw damaged(where, e.what());
      }
      if (static_cast<std::int64_t>(l.values.size()) != q.i64(2))
        throw damaged(where, fmt::format("{} values where the row says {}", l.values.size(), q.i64(2)));
      s.links.push_back(std::move(l));
    }
  }
  {
    stmt q(file_, db_,
           "SELECT instance, id, node, shown, asked_unix_ms, deadline_unix_ms FROM pending WHERE snapshot = ? ORDER BY instance, id");
    q.bind(1, id);
    while (q.step("reading a snapshot's pending decisions")) {
      pending_record d;
      d.instance = u32(q.i64(0), "a pending decision's instance");
      d.id = static_cast<std::uint64_t>(q.i64(1));
      d.node = q.text(2);
      d.shown = value_of(q.bytes(3), fmt::format("decision {} of instance {}", d.id, d.instance));
      d.asked_unix_ms = q.i64(4);
      d.deadline_unix_ms = q.i64(5);
      s.pending.push_back(std::move(d));
    }
  }
  return s;
}

std::vector<decision_record> store::decisions(std::int64_t after) const {
  std::vector<decision_record> out;
  stmt q(file_, db_,
         "SELECT rowid, instance, id, verdict, value, reason, by, at_unix_ms FROM decisions WHERE rowid > ? ORDER BY rowid");
  q.bind(1, after);
  while (q.step("reading the decisions")) {
    decision_record d;
    d.row = q.i64(0);
    d.instance = static_cast<std::uint32_t>(q.i64(1));
    d.id = static_cast<std::uint64_t>(q.i64(2));
    d.verdict = q.text(3);
    if (d.verdict == "edit") {
      try {
        d.edited = decode(q.bytes(4));
      } catch (const decode_error& e) {
        throw error(error::kind::damaged, fmt::format("{} is damaged: the edited value of decision {} of instance {}: {}",
                                                      file_.string(), d.id, d.instance, e.what()));
      }
    }
    d.reason = q.text(5);
    d.by = q.text(6);
    d.at_unix_ms = q.i64(7);
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<std::string> store::meta(std::string_view key) const {
  stmt q(file_, db_, "SELECT value FROM meta WHERE key = ?");
  q.bind(1, key);
  if (!q.step("reading meta")) return std::nullopt;
  return q.text(0);
}

std::vector<std::pair<std::string, std::string>> store::all_meta() const {
  std::vector<std::pair<std::string, std::string>> out;
  stmt q(file_, db_, "SELECT key, value FROM meta ORDER BY key");
  while (q.step("reading meta")) out.emplace_back(q.text(0), q.text(1));
  return out;
}

}  // namespace loom::state
