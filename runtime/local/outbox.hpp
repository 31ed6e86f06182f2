// runtime/local/outbox.hpp: a node instance's output side: its out-links (one per consumer replica of each
// edge), the credits each holds, and the values waiting to go.
//
// Placing a value: across the edges of a port every edge gets it (fan-out); among the links of one edge
// (the consumer's replicas) the link with the most room takes it (room = credits - values pending on it),
// ties in round-robin order. The node is *blocked* only when some edge has no link with room: then it
// cannot place its next value. The check is O(1): each edge counts its links with room, the outbox counts
// its edges with none.
//
// A link with a byte budget (out_link_plan::bytes: links across hosts) also counts the bytes it holds
// (link_bytes of each value queued or sent and not yet credited; a credit of n frees the first n sent).
// Its room is then also what fits in the bytes left at the size of the values it sent last (one value at
// least while any bytes are left, none once they are all taken), so a source's pull or a node's run stops
// near the budget, not at the window's value count.
//
// Transactions: what a node emits while handling one input (with the replies of the calls it makes for
// it) is one attempt. Until the attempt commits nothing of it is sent; a failed attempt is rolled back and
// its values are discarded, never sent. Only the links an attempt touched are visited.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "loom/runtime/local/batch_pool.hpp"
#include "loom/runtime/local/messages.hpp"
#include "loom/runtime/local/run_state.hpp"

namespace loom::local {

class outbox {
 public:
  // Lays out the links of `plan`, in the numbering expand() gave them (port, edge, replica). `run` holds
  // the edges' counters: the time each edge waits for credit is recorded there (a clock read only when an
  // edge fills up or gets room again, never per value). New batches come from `pool` (it outlives this).
  void wire(const instance_plan& plan, const std::vector<caf::actor>& actors, run_state& run, batch_pool& pool);

  // Puts `v` on every edge of `port`; false when no edge leaves the port. Inline for the common case (one
  // edge, one link): a value costs a vector append and two counts.
  bool emit(std::size_t port, value&& v) {
    if (port < ports_.size() && ports_[port].size() == 1) {
      const auto& e = edges_[ports_[port][0]];
      if (e.links.size() == 1) {
        push(e.links[0], std::move(v));
        return true;
      }
    }
    return emit_any(port, std::move(v));
  }
  // emit() of each of `values`, in order; one append when the port has one edge of one link.
  bool emit_run(std::size_t port, std::span<const value> values);
  bool connected(std::size_t port) const { return port < ports_.size() && !ports_[port].empty(); }
  std::size_t ports() const { return ports_.size(); }

  // Some edge has no link with room: handling more input would queue past a capacity.
  bool blocked() const { return full_edges_ > 0; }
  // Values the node can emit now without passing any edge's capacity (1024 when nothing is connected).
  std::size_t budget() const;
  bool has_pending() const { return !dirty_.empty(); }

  // Credits back from a consumer. False for a link id or count the link cannot have (a protocol error).
  bool credit(link_id link, std::uint32_t n);

  // Sends the committed values of every link that has credit, one batch message per link. Returns how many.
  // `more`: the node goes on with queued input at once (its turn ended on its value count, not its clock):
  // a link to another host then keeps its values until they fill a batch of `remote_batch` (or all its
  // credits), so a busy hop across hosts sends fewer, larger envelopes. Every other flush sends all.
  std::uint64_t flush(caf::event_based_actor* self, bool more = false);
  // The values a link to another host gathers while its producer is busy (docs/cluster.md).
  static constexpr std::int64_t remote_batch = 1024;
  // End of stream on every link (after the last flush).
  void close(caf::event_based_actor* self);

  // A movable instance tags each value it emits with its lineage (lineage.hpp): the input being handled
  // is set before each value, and every value emitted for it counts one up. Among an edge's links the pick
  // is then a function of the tag, so a replacement sends each output where the original did.
  void tag_lineage() { tagging_ = true; }
  void set_input(link_id link, std::uint64_t index) { tag_ = lineage{link, 0, index}; }
  // One port, one edge, one link: where a run of a one-output-per-input kind may be tagged in one step.
  bool single_link() const {
    return ports_.size() == 1 && ports_[0].size() == 1 && edges_[ports_[0][0]].links.size() == 1;
  }
  // On a single_link() outbox that tags: `values` are the outputs of inputs first, first + 1, ... of
  // in-link `link`, each the only output of its input (tags (link, 0, first + i)), appended in one step.
  void emit_mapped(std::span<const value> values, link_id link, std::uint64_t first);

  // What a snapshot keeps of the output side (docs/durability.md): per out-link, the committed values
  // not yet sent (shared, not copied), in order. The open attempt's values are left out: a resumed run
  // does that attempt again.
  struct unsent {
    link_id link = 0;
    std::vector<value> values;
  };
  std::vector<unsent> committed_unsent() const;
  // After the part is taken: a barrier on every out-link, behind every batch sent on it before.
  void send_barrier(caf::event_based_actor* self, std::uint64_t epoch);
  // A resumed run: the committed values a snapshot kept, queued to go (outside any attempt) as credits
  // allow. False for a link it does not have.
  bool restore(const std::vector<unsent>& outputs);

  void begin();     // a new attempt
  void commit();    // its values may go
  void rollback();  // its values are discarded
  bool in_attempt() const { return open_; }

 private:
  struct link {
    caf::actor target;
    link_id remote;
    std::int64_t capacity;
    std::int64_t credits;
    std::uint32_t edge;
    bool dirty = false;        // listed in dirty_
    std::size_t reserve = 0;   // the last batch's size: the next pending vector starts that large
    std::uint64_t attempt = 0; // the attempt that set `mark`
    std::size_t mark = 0;      // pending.size() when that attempt first touched this link
    std::vector<value> pending;
    lineage_tags tags;          // tagging: one per pending value, as runs
    std::uint32_t consumer = 0;
    bool elsewhere = false;     // the consumer lives on another host (its target is a stand-in)
    // The byte budget (0: none), the bytes held (queued and in flight), of those the queued ones, the
    // estimated size of one value (the mean of the last batch sent; budget / 64 before the first), and the
    // batches in flight, oldest first: values and bytes, for the credits coming back.
    std::int64_t budget = 0;
    std::int64_t bytes = 0;
    std::int64_t queued = 0;  // the bytes of `pending` (part of `bytes`): a flush of all of it counts none
    std::int64_t unit = 0;
    std::deque<std::pair<std::int64_t, std::int64_t>> flight;
    std::int64_t room() const {
      auto r = credits - static_cast<std::int64_t>(pending.size());
      if (budget == 0) return r;
      if (bytes >= budget) return std::min<std::int64_t>(r, 0);
      return std::min(r, std::max<std::int64_t>(1, (budget - bytes) / unit));
    }
  };
  struct edge {
    std::vector<std::uint32_t> links;
    std::uint32_t with_room = 0;  // links whose room > 0
    std::int64_t room = 0;        // sum of the positive rooms
    std::uint32_t next = 0;       // round robin among ties
    edge_counters* stat = nullptr;
  };

  bool emit_any(std::size_t port, value&& v);
  std::uint32_t pick(edge& e);
  void push(std::uint32_t l, value&& v) {
    auto& k = prepare(l, 1);
    if (k.budget > 0) return push_counted(l, std::move(v));
    auto before = k.room();
    append(k, std::move(v));
    took_one(k, before);
  }
  // Queues one value on link k, with its lineage tag when the outbox tags.
  void append(link& k, value&& v) {
    k.pending.push_back(std::move(v));
    if (tagging_) {
      k.tags.push_back(tag_);
      ++tag_.nth;
    }
  }
  // Link k's room dropped by one from `before`: the edge's counts change only when the link had room, and
  // it fills at 1.
  void took_one(link& k, std::int64_t before) {
    if (before > 0) {
      auto& e = edges_[k.edge];
      --e.room;
      if (before == 1) lost_room(e);
    }
  }
  // Queues `values` on link l (prepared, their bytes counted); returns the link's room before (then track()).
  std::int64_t append_run(std::uint32_t l, std::span<const value> values);
  // Link l is about to take `n` values: marked for the open attempt, listed dirty, with storage.
  link& prepare(std::uint32_t l, std::size_t n) {
    auto& k = links_[l];
    if (open_ && k.attempt != attempt_) mark(l);
    if (!k.dirty) {
      k.dirty = true;
      dirty_.push_back(l);
    }
    if (k.pending.capacity() == 0) k.pending = pool_->take(std::max<std::size_t>({k.reserve, n, 16}));
    return k;
  }
  void push_counted(std::uint32_t l, value&& v);  // push() on a link with a byte budget
  void mark(std::uint32_t l);   // the open attempt touches link l for the first time
  void lost_room(edge& e);      // a link of e went from room to none
  // Keeps the edge counts true across a change of link l's room from `before`.
  void track(std::uint32_t l, std::int64_t before);
  std::size_t committed(const link& l) const {
    return open_ && l.attempt == attempt_ ? l.mark : l.pending.size();
  }

  std::vector<std::vector<std::uint32_t>> ports_;  // port -> its edges
  std::vector<edge> edges_;
  std::vector<link> links_;
  batch_pool* pool_ = nullptr;
  std::vector<std::uint32_t> dirty_;    // links with pending values
  std::vector<std::uint32_t> touched_;  // links the open attempt touched
  std::uint32_t full_edges_ = 0;
  std::uint64_t attempt_ = 0;
  bool open_ = false;
  bool tagging_ = false;
  lineage tag_;
};

}  // namespace loom::local
