// runtime/state/store_write.cpp: writing the state file (store.hpp, docs/durability.md): a snapshot in one
// transaction with the pruning of older ones, the test crash point inside it, pins and meta.
#include "loom/runtime/state/store.hpp"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <fmt/format.h>

#include <stdexcept>

#include "loom/runtime/state/store_detail.hpp"
#include "loom/runtime/state/value_codec.hpp"

namespace loom::state {

using namespace detail;

void store::crash_point() {
  if (crash_after_ > 0 && ++rows_ == crash_after_) ::kill(::getpid(), SIGKILL);
}

std::int64_t store::write(const snapshot& s, std::size_t keep) {
  if (keep < 1) throw std::invalid_argument("state::store::write: keep must be at least 1");
  transaction t(file_, db_);
  std::int64_t id = 0;
  {
    stmt q(file_, db_, "INSERT INTO snapshots(epoch, taken_unix_ms, reason, complete, pinned, progress) VALUES(?, ?, ?, 0, 0, ?)");
    q.bind(1, static_cast<std::int64_t>(s.info.epoch)).bind(2, s.info.taken_unix_ms).bind(3, s.info.reason);
    q.bind(4, s.info.progress).run("writing a snapshot");
    id = sqlite3_last_insert_rowid(db_);
    crash_point();
  }
  auto encoded = [&](const auto& what, auto&& make) {
    try {
      return make();
    } catch (const encode_error& e) {
      throw encode_error(fmt::format("{}: {}", what(), e.what()));
    }
  };
  {
    stmt q(file_, db_, "INSERT INTO parts(snapshot, instance, phase, checkpoint, replay, closed) VALUES(?, ?, ?, ?, ?, ?)");
    for (const auto& p : s.parts) {
      auto name = [&](const char* field) { return [&, field] { return fmt::format("instance {}'s {}", p.instance, field); }; };
      auto c = encoded(name("checkpoint"), [&] { return encode(p.checkpoint); });
      auto r = encoded(name("replay"), [&] { return encode(p.replay); });
      auto cl = encoded(name("closed ports"), [&] { return encode(p.closed); });
      q.bind(1, id).bind(2, std::int64_t{p.instance}).bind(3, static_cast<std::int64_t>(p.phase));
      q.bind_blob(4, c).bind_blob(5, r).bind_blob(6, cl).run("writing a part");
      crash_point();
    }
  }
  {
    stmt q(file_, db_, "INSERT INTO links(snapshot, link, side, count, eos, ended, vals) VALUES(?, ?, ?, ?, ?, ?, ?)");
    for (const auto& l : s.links) {
      auto v = encoded([&] { return fmt::format("link {}'s values", l.link); }, [&] { return encode_list(l.values); });
      q.bind(1, id).bind(2, std::int64_t{l.link}).bind(3, static_cast<std::int64_t>(l.side));
      q.bind(4, static_cast<std::int64_t>(l.values.size())).bind(5, std::int64_t{l.eos ? 1 : 0});
      q.bind(6, std::int64_t{l.ended ? 1 : 0}).bind_blob(7, v).run("writing a link");
      crash_point();
    }
  }
  {
    stmt q(file_, db_,
           "INSERT INTO pending(snapshot, instance, id, node, shown, asked_unix_ms, deadline_unix_ms) VALUES(?, ?, ?, ?, ?, ?, ?)");
    for (const auto& d : s.pending) {
      auto v = encoded([&] { return fmt::format("decision {} of instance {}", d.id, d.instance); },
                       [&] { return encode(d.shown); });
      q.bind(1, id).bind(2, std::int64_t{d.instance}).bind(3, static_cast<std::int64_t>(d.id)).bind(4, d.node);
      q.bind_blob(5, v).bind(6, d.asked_unix_ms).bind(7, d.deadline_unix_ms).run("writing a pending decision");
      crash_point();
    }
  }
  stmt(file_, db_, "UPDATE snapshots SET complete = 1 WHERE id = ?").bind(1, id).run("writing a snapshot");
  // A recorded decision whose decision this snapshot no longer holds pending was taken (or timed out): it is
  // done with, in the same transaction as the state that shows it.
  stmt(file_, db_,
       "DELETE FROM decisions WHERE NOT EXISTS (SELECT 1 FROM pending p WHERE p.snapshot = ? AND "
       "p.instance = decisions.instance AND p.id = decisions.id)")
      .bind(1, id)
      .run("dropping the decisions taken");
  // Prune: keep the newest `keep` complete unpinned snapshots (and every pinned one); the rows of the others
  // go by ON DELETE CASCADE.
  stmt(file_, db_,
       "DELETE FROM snapshots WHERE pinned = 0 AND id NOT IN "
       "(SELECT id FROM snapshots WHERE pinned = 0 AND complete = 1 ORDER BY id DESC LIMIT ?)")
      .bind(1, static_cast<std::int64_t>(keep))
      .run("pruning old snapshots");
  // Freed pages are reused by the next snapshot; give them back to the file system only when most of the
  // file is free (a snapshot much smaller than the ones before).
  auto free_pages = pragma_int(file_, db_, "PRAGMA freelist_count", "pruning old snapshots");
  if (free_pages > 256 && free_pages * 2 > pragma_int(file_, db_, "PRAGMA page_count", "pruning old snapshots"))
    exec(file_, db_, "PRAGMA incremental_vacuum", "giving back free pages");
  t.commit();
  return id;
}

void store::pin(std::int64_t id, bool pinned) {
  stmt(file_, db_, "UPDATE snapshots SET pinned = ? WHERE id = ? AND complete = 1")
      .bind(1, std::int64_t{pinned ? 1 : 0})
      .bind(2, id)
      .run("pinning a snapshot");
  if (sqlite3_changes(db_) == 0)
    throw error(error::kind::missing, fmt::format("{} holds no complete snapshot {}", file_.string(), id));
}

void store::decide(const decision_record& d) {
  if (d.verdict != "approve" && d.verdict != "reject" && d.verdict != "edit")
    throw std::invalid_argument("state::store::decide: the verdict is approve, reject or edit");
  transaction t(file_, db_);
  {
    stmt q(file_, db_, "SELECT verdict, by, at_unix_ms FROM decisions WHERE instance = ? AND id = ?");
    q.bind(1, std::int64_t{d.instance}).bind(2, static_cast<std::int64_t>(d.id));
    if (q.step("reading the decisions"))
      throw error(error::kind::exists, fmt::format("{}: decision {} of instance {} was already given ({} by {})",
                                                   file_.string(), d.id, d.instance, q.text(0), q.text(1)));
  }
  blob v;
  if (d.verdict == "edit") v = encode(d.edited);
  stmt q(file_, db_, "INSERT INTO decisions(instance, id, verdict, value, reason, by, at_unix_ms) VALUES(?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, std::int64_t{d.instance}).bind(2, static_cast<std::int64_t>(d.id)).bind(3, d.verdict);
  q.bind_blob(4, v).bind(5, d.reason).bind(6, d.by).bind(7, d.at_unix_ms).run("recording a decision");
  t.commit();
}

void store::set_meta(std::string_view key, std::string_view value) {
  stmt(file_, db_, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .bind(1, key)
      .bind_blob(2, value.data(), value.size())
      .run("writing meta");
}

}  // namespace loom::state
