// runtime/local/inbox.hpp: a node instance's input side: the batches that arrived, in order, the state of
// each in-link (open, values consumed and not yet granted back), and which input ports have closed.
//
// Batches are queued whole (no per-value copy) and consumed in place. Credits go back to a producer once
// half of its link's capacity has been consumed: at most one credit message per half capacity, never one
// per value. A link with a byte budget (in_link_plan::bytes) also grants once half of it has been
// consumed, so a producer stopped by its byte budget, far below its window's value count, gets credits back.
// The inbox checks what arrives against the plan: a link id it does not have, a link that sends
// past its capacity or after its end of stream is a protocol error, reported, never an out-of-range write.
#pragma once

#include <caf/all.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loom/runtime/local/batch_pool.hpp"
#include "loom/runtime/local/messages.hpp"

namespace loom::local {

class inbox {
 public:
  // `pool` (outlives the inbox) takes each batch once it is consumed.
  void wire(const instance_plan& plan, const std::vector<caf::actor>& actors, batch_pool& pool);

  // What arrived; an error message for what the link cannot send. A batch from a movable producer (with
  // lineage tags) loses the values at or below the last tag seen from the same in-link of that producer:
  // what a replacement produced again. Their credits go back at once (`self`).
  std::optional<std::string> add(caf::event_based_actor* self, batch_msg& b);
  std::optional<std::string> add_eos(link_id link);

  // The next item: a value on a link, or a link's end of stream.
  bool empty() const { return chunks_.empty(); }
  std::size_t depth() const { return depth_; }
  link_id front_link() const { return chunks_.front().link; }
  bool front_is_eos() const { return chunks_.front().eos; }
  // The front batch's values from the front on (one link, so one port): a node handles a run of them in
  // one attempt. front_run() is how many are left in it; front_at(k) the k-th of them.
  std::size_t front_run() const { return chunks_.front().values.size() - chunks_.front().pos; }
  const value& front_at(std::size_t k) const { return chunks_.front().values[chunks_.front().pos + k]; }
  // The first n of them (n <= front_run()), in place.
  std::span<const value> front_span(std::size_t n) const {
    const auto& c = chunks_.front();
    return {c.values.data() + c.pos, n};
  }
  // The index of front_at(k) on its link (a movable instance tags its outputs with it).
  std::uint64_t front_index(std::size_t k) const { return chunks_.front().first + chunks_.front().pos + k; }
  std::size_t port_of(link_id l) const { return links_[l].port; }
  link_id remote_of(link_id l) const { return links_[l].remote; }
  const std::string& label_of(link_id l) const { return links_[l].label; }

  // Consumes the front n values (n <= front_run()) and grants credits when the threshold is reached.
  void pop_values(caf::event_based_actor* self, std::size_t n);
  // Consumes the front end of stream; returns the port when it was the last open link of its port.
  std::optional<std::size_t> pop_eos(caf::event_based_actor* self);
  // A movable instance's credits are effect acknowledgements: granted only once what it emitted for them
  // has left its outbox (the caller says when, with grant_owed).
  void defer_grants() { defer_ = true; }
  void grant_owed(caf::event_based_actor* self);
  // The producer of `link` was replaced (producer_replaced_msg). False for a link id it does not have.
  bool replaced(link_id link);

  // Discards everything queued (a stop); returns how many values.
  std::uint64_t clear();

  // -- snapshots (docs/durability.md) ---------------------------------------------------------------
  // What a consistent snapshot keeps of one in-link: the values on it from this instance's consumption
  // point at the moment its part was taken up to the link's barrier; `eos`: the link's end of stream came
  // after them (queued, or arrived before a barrier), not yet consumed; `ended`: it was consumed before.
  struct record {
    link_id link = 0;
    std::vector<value> values;
    bool eos = false;
    bool ended = false;
  };
  // Starts recording every in-link: what is queued now (the open attempt's values included: they are not
  // consumed until it commits), then each value that arrives, until the link's barrier (end_recording) or
  // its end of stream. Values are shared, not copied. A link whose stream had ended is recorded as ended.
  void start_recording();
  // The barrier arrived on `link`: its recording ends. False for a link id it does not have.
  bool end_recording(link_id link);
  // Some in-link is still recording.
  bool recording() const { return recording_ > 0; }
  // The records (one per in-link, in link order), taken out; call once recording() is false.
  std::vector<record> take_records();
  // A resumed run: queues what a snapshot recorded, after wire(), ahead of anything that arrived before the
  // node started (a producer on another host, or one started first, may send before this node's start:
  // what it sends follows the recorded values on its link). The values
  // are consumed without a credit (the producer starts with the link's whole capacity, as for a replaced
  // one); an ended link is closed (its port too, once all of its links have ended). An error for a record
  // of a link it does not have.
  std::optional<std::string> restore(const std::vector<record>& records);

  std::size_t ports() const { return open_links_.size(); }
  std::size_t closed_ports() const { return closed_; }
  // Ports with no links at all: closed from the start.
  std::vector<std::size_t> initially_closed() const;

 private:
  struct link {
    std::size_t port;
    caf::actor producer;
    link_id remote;
    std::int64_t capacity;
    std::uint32_t threshold;
    std::int64_t held = 0;       // values sent to us and not yet granted back
    std::uint32_t consumed = 0;  // consumed since the last grant
    bool open = true;
    std::string label;
    bool owed = false;         // a grant waits for the outbox (defer_grants)
    bool replaced = false;     // its producer was replaced: a repeated end of stream is dropped
    std::int64_t swallow = 0;  // values queued from the replaced producer: consumed without a credit
    std::uint64_t next_index = 0;
    std::uint32_t producer_index = 0;
    std::vector<lineage> last;  // per in-link of a movable producer: the last tag taken
    bool recording = false;     // a snapshot records what arrives on it (start_recording)
    std::int64_t byte_threshold = 0;  // half the byte budget (0: none)
    std::int64_t consumed_bytes = 0;  // the link_bytes of `consumed`, on a link with a budget
  };
  struct chunk {
    link_id link;
    bool eos;
    std::size_t pos;
    std::vector<value> values;
    std::uint64_t first = 0;
  };
  // Drops the values of `b` a movable producer sent before (its tags); returns how many.
  std::size_t drop_repeats(link& l, batch_msg& b);
  void grant(caf::event_based_actor* self, link& l);       // now, or owed (defer_grants)
  void send_grant(caf::event_based_actor* self, link& l);  // now

  std::vector<link> links_;
  batch_pool* pool_ = nullptr;
  std::deque<chunk> chunks_;
  std::size_t depth_ = 0;              // values queued
  std::vector<std::size_t> open_links_;  // per port
  std::size_t closed_ = 0;
  bool defer_ = false;
  std::vector<record> records_;  // per link while a snapshot records
  std::size_t recording_ = 0;    // links still recording
};

}  // namespace loom::local
