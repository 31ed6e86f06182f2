// source.blob: emits `count` bytes values of `size` bytes each, each freshly allocated and filled with a
// cheap deterministic pattern (byte i of blob k is (i + k) mod 256). For memory and throughput tests.
//   outputs: out (bytes)
//   params:  count (integer, default 1000, >= 0), size (integer, default 1024, 0 .. 1073741824)
#include <cstdint>
#include <memory>

#include "loom/actors/kinds.hpp"

namespace loom::actors {
namespace {

class blob final : public node {
 public:
  explicit blob(const params& p)
      : count_(static_cast<std::uint64_t>(p.get_int("count"))),
        size_(static_cast<std::size_t>(p.get_int("size"))) {}
  blob(const params& p, const value& restored) : blob(p) {
    if (restored.is_int()) index_ = static_cast<std::uint64_t>(restored.as_int());  // a restart: go on
  }

  bool on_pull(context& ctx) override {
    for (std::size_t n = ctx.budget(); n > 0 && index_ < count_ && !ctx.stopping(); --n, ++index_) {
      bytes b(size_);
      for (std::size_t i = 0; i < size_; ++i) b[i] = static_cast<std::byte>((i + index_) & 0xff);
      ctx.emit(value(std::move(b)));
    }
    ctx.checkpoint(value(static_cast<std::int64_t>(index_)));
    return index_ < count_ && !ctx.stopping();
  }

 private:
  std::uint64_t index_ = 0, count_;
  std::size_t size_;
};

}  // namespace

kind_def blob_kind() {
  using graph::param_spec;
  graph::kind_spec s;
  s.name = "source.blob";
  s.doc = "emits count byte blobs of size bytes each (memory and throughput tests)";
  s.stateful = true;  // checkpoint: how many it emitted
  s.outputs = {{"out", "bytes values, each freshly allocated"}};
  s.params = {param_spec::integer("count", "how many blobs to emit").def(1000).at_least(0),
              param_spec::integer("size", "bytes per blob").def(1024).at_least(0).at_most(1073741824)};
  return {std::move(s), [](const node_init& init) { return std::make_unique<blob>(init.params, init.restored); }};
}

}  // namespace loom::actors
