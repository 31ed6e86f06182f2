// runtime/local/inbox.cpp: queued batches, credits back, end of stream per link and port.
#include "loom/runtime/local/inbox.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace loom::local {

void inbox::wire(const instance_plan& plan, const std::vector<caf::actor>& actors, batch_pool& pool) {
  pool_ = &pool;
  links_.clear();
  for (const auto& l : plan.in_links) {
    links_.push_back(link{l.port, actors[l.producer], l.remote, l.capacity,
                          static_cast<std::uint32_t>(std::max<std::int64_t>(1, l.capacity / 2)), 0, 0, true, l.label});
    links_.back().producer_index = l.producer;
    if (l.bytes > 0) links_.back().byte_threshold = std::max<std::int64_t>(1, l.bytes / 2);
  }
  open_links_.assign(plan.input_names.size(), 0);
  for (const auto& l : links_) ++open_links_[l.port];
  closed_ = static_cast<std::size_t>(std::count(open_links_.begin(), open_links_.end(), 0));
}

std::optional<std::string> inbox::add(caf::event_based_actor* self, batch_msg& b) {
  if (b.link >= links_.size()) return fmt::format("a batch on link {}, which this node does not have", b.link);
  auto& l = links_[b.link];
  if (!l.open) {
    if (l.replaced) {  // the replacement's repeats of what ended here before: dropped, credited at once
      if (!b.values.empty())
        self->send(l.producer, credit_msg{l.remote, static_cast<std::uint32_t>(b.values.size()), l.producer_index});
      return std::nullopt;
    }
    return fmt::format("a batch on edge {} after its end of stream", l.label);
  }
  l.held += static_cast<std::int64_t>(b.values.size());
  if (l.held > l.capacity)
    return fmt::format("edge {} sent {} values past its capacity of {}", l.label, l.held - l.capacity, l.capacity);
  if (b.first != no_index) l.next_index = b.first;
  auto first = l.next_index;
  l.next_index += b.values.size();
  if (!b.tags.empty()) {
    if (b.tags.size() != b.values.size())
      return fmt::format("edge {} sent {} lineage tags for {} values", l.label, b.tags.size(), b.values.size());
    if (auto n = drop_repeats(l, b); n > 0) {
      l.consumed += static_cast<std::uint32_t>(n);
      if (l.consumed >= l.threshold) grant(self, l);
    }
  }
  if (b.values.empty()) return std::nullopt;
  if (l.recording) {
    auto& r = records_[b.link].values;
    r.insert(r.end(), b.values.begin(), b.values.end());
  }
  depth_ += b.values.size();
  chunks_.push_back(chunk{b.link, false, 0, std::move(b.values), first});
  return std::nullopt;
}

std::size_t inbox::drop_repeats(link& l, batch_msg& b) {
  // Per run of tags (rising, one in-link of the producer): the values at or below the last tag taken from
  // that in-link are a prefix of the run. The common case (a run past the last tag) drops nothing and
  // moves nothing: one compare a run.
  std::size_t pos = 0, keep = 0;
  for (const auto& r : b.tags.runs()) {
    auto it = std::find_if(l.last.begin(), l.last.end(), [&r](const lineage& x) { return x.link == r.link; });
    std::size_t drop = 0;
    if (it == l.last.end()) {
      l.last.push_back(r.back());
    } else {
      if (!(*it < r.front())) {
        // r.at(i) <= last when index + i < last.index, or index + i == last.index and nth <= last.nth
        // (last.index >= r.index here).
        auto d = it->index - r.index + (r.nth <= it->nth ? 1 : 0);
        drop = static_cast<std::size_t>(std::min<std::uint64_t>(d, r.count));
      }
      if (drop < r.count) *it = r.back();
    }
    auto from = pos + drop, to = pos + r.count;
    if (keep != from)
      std::move(b.values.begin() + static_cast<std::ptrdiff_t>(from), b.values.begin() + static_cast<std::ptrdiff_t>(to),
                b.values.begin() + static_cast<std::ptrdiff_t>(keep));
    keep += to - from;
    pos = to;
  }
  b.values.resize(keep);
  return pos - keep;
}

bool inbox::replaced(link_id id) {
  if (id >= links_.size()) return false;
  auto& l = links_[id];
  // What the old producer sent and we still queue is consumed without a credit: the replacement starts
  // with the link's whole capacity, so only its own values count against it from now on.
  l.swallow += l.held - static_cast<std::int64_t>(l.consumed);
  l.held = 0;
  l.consumed = 0;
  l.consumed_bytes = 0;
  l.owed = false;
  l.replaced = true;
  return true;
}

void inbox::grant_owed(caf::event_based_actor* self) {
  for (auto& l : links_)
    if (l.owed) {
      l.owed = false;
      send_grant(self, l);
    }
}

std::optional<std::string> inbox::add_eos(link_id id) {
  if (id >= links_.size()) return fmt::format("an end of stream on link {}, which this node does not have", id);
  auto& l = links_[id];
  if (!l.open) {
    if (l.replaced) return std::nullopt;  // the replacement ends a stream that had ended here
    return fmt::format("a second end of stream on edge {}", l.label);
  }
  l.open = false;  // its values may still be queued: the port closes once they are consumed
  if (l.recording) {
    l.recording = false;
    records_[id].eos = true;
    --recording_;
  }
  chunks_.push_back(chunk{id, true, 0, {}});
  return std::nullopt;
}

void inbox::grant(caf::event_based_actor* self, link& l) {
  if (l.consumed == 0) return;
  if (defer_)
    l.owed = true;
  else
    send_grant(self, l);
}

void inbox::send_grant(caf::event_based_actor* self, link& l) {
  if (l.consumed == 0) return;
  self->send(l.producer, credit_msg{l.remote, l.consumed, l.producer_index});
  l.held -= l.consumed;
  l.consumed = 0;
  l.consumed_bytes = 0;
}

void inbox::pop_values(caf::event_based_actor* self, std::size_t n) {
  auto& c = chunks_.front();
  auto& l = links_[c.link];
  // The replaced producer's values (first in the queue) are not counted: no credit goes back for them.
  auto swallowed =
      static_cast<std::size_t>(std::clamp<std::int64_t>(l.swallow, 0, static_cast<std::int64_t>(n)));
  if (l.byte_threshold > 0)
    l.consumed_bytes += link_bytes(std::span<const value>(c.values).subspan(c.pos + swallowed, n - swallowed));
  c.pos += n;
  if (c.pos == c.values.size()) {
    pool_->give(std::move(c.values));
    chunks_.pop_front();
  }
  depth_ -= n;
  l.swallow -= static_cast<std::int64_t>(swallowed);
  n -= swallowed;
  l.consumed += static_cast<std::uint32_t>(n);
  if (l.consumed >= l.threshold || (l.byte_threshold > 0 && l.consumed_bytes >= l.byte_threshold)) grant(self, l);
}

std::optional<std::size_t> inbox::pop_eos(caf::event_based_actor* self) {
  auto id = chunks_.front().link;
  chunks_.pop_front();
  auto& l = links_[id];
  grant(self, l);
  if (--open_links_[l.port] > 0) return std::nullopt;
  ++closed_;
  return l.port;
}

std::uint64_t inbox::clear() {
  auto n = depth_;
  chunks_.clear();
  depth_ = 0;
  return n;
}

void inbox::start_recording() {
  records_.assign(links_.size(), record{});
  recording_ = 0;
  for (link_id id = 0; id < links_.size(); ++id) {
    records_[id].link = id;
    links_[id].recording = links_[id].open;
    if (links_[id].recording) ++recording_;
    records_[id].ended = !links_[id].open;  // unless its end of stream is still queued (below)
  }
  for (const auto& c : chunks_) {
    auto& r = records_[c.link];
    if (c.eos) {
      r.eos = true;
      r.ended = false;
    } else {
      r.values.insert(r.values.end(), c.values.begin() + static_cast<std::ptrdiff_t>(c.pos), c.values.end());
    }
  }
}

std::optional<std::string> inbox::restore(const std::vector<record>& records) {
  for (const auto& r : records)
    if (r.link >= links_.size()) return fmt::format("a snapshot's record of in-link {}, which this node does not have", r.link);
  std::deque<chunk> restored;
  for (const auto& r : records) {
    auto& l = links_[r.link];
    if (!r.values.empty()) {
      depth_ += r.values.size();
      l.swallow += static_cast<std::int64_t>(r.values.size());
      restored.push_back(chunk{r.link, false, 0, r.values, 0});
    }
    if (r.eos) {
      l.open = false;
      restored.push_back(chunk{r.link, true, 0, {}});
    } else if (r.ended && l.open) {
      l.open = false;
      if (--open_links_[l.port] == 0) ++closed_;
    }
  }
  chunks_.insert(chunks_.begin(), std::make_move_iterator(restored.begin()), std::make_move_iterator(restored.end()));
  return std::nullopt;
}

bool inbox::end_recording(link_id id) {
  if (id >= links_.size()) return false;
  auto& l = links_[id];
  if (l.recording) {
    l.recording = false;
    --recording_;
  }
  return true;
}

std::vector<inbox::record> inbox::take_records() {
  for (auto& l : links_) l.recording = false;
  recording_ = 0;
  return std::exchange(records_, {});
}

std::vector<std::size_t> inbox::initially_closed() const {
  std::vector<std::size_t> out;
  for (std::size_t p = 0; p < open_links_.size(); ++p)
    if (open_links_[p] == 0) out.push_back(p);
  return out;
}

}  // namespace loom::local
