// runtime/transport/outbound.cpp: what a sender keeps until it is acknowledged, and gives back for resends.
#include "loom/runtime/transport/outbound.hpp"

namespace loom::transport {

outbound_streams::kept_msg outbound_streams::copy(std::uint64_t seq, multipart& parts) {
  kept_msg k;
  k.seq = seq;
  k.head.copy(parts[0]);
  if (parts.size() > 1) {
    k.rest.resize(parts.size() - 1);
    for (std::size_t i = 1; i < parts.size(); ++i) k.rest[i - 1].copy(parts[i]);
  }
  return k;
}

multipart outbound_streams::parts_of(kept_msg& k) {
  multipart out(1 + k.rest.size());
  out[0].copy(k.head);
  for (std::size_t i = 0; i < k.rest.size(); ++i) out[i + 1].copy(k.rest[i]);
  return out;
}

outbound_streams::stream_out* outbound_streams::find(const stream_key& k) {
  if (last_ && last_key_ == k) return last_;
  auto it = out_.find(k);
  return it == out_.end() ? nullptr : &it->second;
}

void outbound_streams::keep(const stream_key& stream, owner_id owner, kept_msg&& m) {
  stream_out* o = last_ && last_key_ == stream && last_->owner == owner ? last_ : nullptr;
  if (!o) {
    o = &out_[stream];
    o->owner = owner;
    last_ = o;
    last_key_ = stream;
  }
  o->kept.push_back(std::move(m));
  ++kept_;
}

void outbound_streams::acknowledged(const stream_key& stream, std::uint64_t next) {
  auto* o = find(stream);
  if (!o) return;
  while (!o->kept.empty() && o->kept.front().seq < next) {
    o->kept.pop_front();
    --kept_;
  }
}

std::vector<std::pair<stream_key, outbound_streams::kept_msg>> outbound_streams::take(owner_id owner) {
  std::vector<std::pair<stream_key, kept_msg>> out;
  for (auto& [k, o] : out_) {
    if (o.owner != owner) continue;
    for (auto& m : o.kept) out.emplace_back(k, std::move(m));
    kept_ -= o.kept.size();
    o.kept.clear();
  }
  return out;
}

template <class Pred>
void outbound_streams::forget(Pred pred) {
  std::erase_if(out_, [&](const auto& kv) {
    if (!pred(kv.first, kv.second)) return false;
    kept_ -= kv.second.kept.size();
    return true;
  });
  last_ = nullptr;
}

void outbound_streams::forget_run(std::uint64_t run) {
  forget([&](const stream_key& k, const stream_out&) { return k.run == run; });
}

void outbound_streams::forget_owner(owner_id owner) {
  forget([&](const stream_key&, const stream_out& o) { return o.owner == owner; });
}

}  // namespace loom::transport
