// runtime/local/lineage.hpp: where a value sent by a movable instance came from (its lineage tag), and a
// batch's tags kept as runs.
//
// A movable instance (`recover: replace`) tags each output with the in-link and index of the input it was
// made from and its place among that input's outputs; a consumer drops a value at or below the last tag it
// has from the same in-link of the same producer (the outputs a replacement produces again,
// docs/cluster.md "Losing a host"). A kind that gives one output per input tags (link, 0, i), (link, 0,
// i + 1), ...: a batch's tags are then one run, kept as one run from the outbox to the consumer's inbox
// (and on the wire, loom.capnp LineageRun), never one tag per value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace loom::local {

using link_id = std::uint32_t;

struct lineage {
  link_id link = 0;
  std::uint32_t nth = 0;
  std::uint64_t index = 0;
  // Order among the tags of one in-link: by input, then by output.
  friend bool operator<(const lineage& a, const lineage& b) {
    return a.index != b.index ? a.index < b.index : a.nth < b.nth;
  }
  friend bool operator==(const lineage&, const lineage&) = default;
};
inline constexpr std::uint64_t no_index = ~std::uint64_t{0};

// The `count` tags {link, nth, index + i}, i in [0, count): rising in lineage order.
struct lineage_run {
  link_id link = 0;
  std::uint32_t nth = 0;
  std::uint64_t index = 0;
  std::uint32_t count = 0;
  lineage front() const { return {link, nth, index}; }
  lineage back() const { return {link, nth, index + count - 1}; }
  lineage at(std::uint32_t i) const { return {link, nth, index + i}; }
  // Whether tag t is the one after this run's last (then the run grows by one to take it).
  bool followed_by(const lineage& t) const { return t.link == link && t.nth == nth && t.index == index + count; }
  friend bool operator==(const lineage_run&, const lineage_run&) = default;
};

// The tags of a batch's values, in order, as runs (each as long as it can be: a tag that continues the
// last run extends it). size() is the number of tags.
class lineage_tags {
 public:
  lineage_tags() = default;
  lineage_tags(std::initializer_list<lineage> tags) {
    for (const auto& t : tags) push_back(t);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::vector<lineage_run>& runs() const { return runs_; }
  void clear() {
    runs_.clear();
    size_ = 0;
  }

  void push_back(const lineage& t) { push_run(t.link, t.nth, t.index, 1); }
  // The `count` tags {link, nth, index + i}.
  void push_run(link_id link, std::uint32_t nth, std::uint64_t index, std::uint64_t count) {
    while (count > 0) {
      auto take = static_cast<std::uint32_t>(count < max_count ? count : max_count);
      if (!runs_.empty() && runs_.back().followed_by({link, nth, index}) &&
          std::uint64_t{runs_.back().count} + take <= max_count) {
        runs_.back().count += take;
      } else {
        runs_.push_back({link, nth, index, take});
      }
      size_ += take;
      index += take;
      count -= take;
    }
  }
  void append(const lineage_tags& more) {
    for (const auto& r : more.runs_) push_run(r.link, r.nth, r.index, r.count);
  }

  // The first n tags, taken out (n <= size()).
  lineage_tags take_front(std::size_t n) {
    lineage_tags out;
    if (n >= size_) {
      out = std::move(*this);
      clear();
      return out;
    }
    std::size_t whole = 0;  // runs that go whole
    while (n >= runs_[whole].count) {
      n -= runs_[whole].count;
      out.size_ += runs_[whole].count;
      ++whole;
    }
    out.runs_.assign(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(whole));
    runs_.erase(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(whole));
    if (n > 0) {
      auto& r = runs_.front();
      out.runs_.push_back({r.link, r.nth, r.index, static_cast<std::uint32_t>(n)});
      out.size_ += n;
      r.index += n;
      r.count -= static_cast<std::uint32_t>(n);
    }
    size_ -= out.size_;
    return out;
  }
  // Keeps the first n tags (n <= size()).
  void truncate(std::size_t n) {
    if (n >= size_) return;
    size_ = n;
    std::size_t r = 0;
    while (r < runs_.size() && n >= runs_[r].count) n -= runs_[r++].count;
    if (n > 0) runs_[r++].count = static_cast<std::uint32_t>(n);
    runs_.resize(r);
  }
  // Tags [start, end), copied.
  lineage_tags slice(std::size_t start, std::size_t end) const {
    lineage_tags out;
    std::size_t at = 0;
    for (const auto& r : runs_) {
      if (end <= at) break;
      auto lo = start > at ? start - at : 0;
      auto hi = end - at < r.count ? end - at : std::size_t{r.count};
      if (lo < hi) out.push_run(r.link, r.nth, r.index + lo, hi - lo);
      at += r.count;
    }
    return out;
  }
  // One tag per value (tests, and reading a few tags; the runtime works on runs()).
  std::vector<lineage> expand() const {
    std::vector<lineage> out;
    out.reserve(size_);
    for (const auto& r : runs_)
      for (std::uint32_t i = 0; i < r.count; ++i) out.push_back(r.at(i));
    return out;
  }
  friend bool operator==(const lineage_tags& a, const lineage_tags& b) { return a.expand() == b.expand(); }

  static constexpr std::uint32_t max_count = ~std::uint32_t{0};

 private:
  std::vector<lineage_run> runs_;
  std::size_t size_ = 0;
};

}  // namespace loom::local
