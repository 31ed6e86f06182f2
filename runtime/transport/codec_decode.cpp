// runtime/transport/codec_decode.cpp: checking and reading loom.capnp frames (codec.hpp's decode). Values are
// read by the one reader of runtime/wire/value_capnp.hpp (the state file's too); the decoder here is the
// wire's side of it: payloads inline or in the message's parts, the limits of decode_limits, and a refusal
// (never an exception out of decode()) that names what was wrong. The writing side is codec_encode.cpp.
#include "loom/runtime/transport/codec.hpp"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>

#include "loom/runtime/wire/value_capnp.hpp"
#include "loom/runtime/transport/codec_wording.hpp"

namespace loom::transport {

namespace {

namespace s = schema;
using detail::wire_words;

struct decode_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw decode_failure(fmt::format(f, std::forward<Args>(args)...));
}

// The wire's source for wire::read: payloads inline or in the message's parts, each part used once.
class decoder {
 public:
  static constexpr const wire::wording& words = wire_words;
  [[noreturn]] static void reject(std::string line) { throw decode_failure(std::move(line)); }

  explicit decoder(multipart& parts) : parts_(parts), used_(parts.size(), false) {}

  loom::value value(s::Value::Reader r) { return wire::read(r, *this); }

  // Inlined into wire::read: called apart (as GCC chose once this file stood alone) a 64-byte value took
  // about 12 % longer to encode and decode (loom_wire_bench, "The codec alone").
  [[gnu::always_inline]] loom::value bytes(s::Payload::Reader p) {
    switch (p.which()) {
      case s::Payload::INLINE: return wire::inline_bytes(p.getInline());
      case s::Payload::FRAME: {
        auto part = take_part(p.getFrame());
        auto b = static_cast<const std::byte*>(part.data());
        return loom::bytes(b, b + part.size());  // loom::bytes owns its vector: one copy
      }
    }
    fail("unknown payload tag {}", static_cast<unsigned>(p.which()));
  }

  // A received tensor's data: a large one is the received part itself (no copy).
  template <class Check>
  std::shared_ptr<const storage> tensor_data(s::Payload::Reader data, Check check) {
    switch (data.which()) {
      case s::Payload::INLINE: return wire::inline_storage(data.getInline(), check);
      case s::Payload::FRAME: {
        auto part = take_part(data.getFrame());
        check(part.size());
        if (reinterpret_cast<std::uintptr_t>(part.data()) % 8 == 0)
          return std::make_shared<zmq_storage>(std::move(part));  // the tensor's data is the received buffer
        // zmq packs small parts into its receive buffer at any offset: copy to keep alignment
        auto b = static_cast<const std::byte*>(part.data());
        return std::make_shared<host_storage>(std::vector<std::byte>(b, b + part.size()));
      }
    }
    fail("unknown payload tag {}", static_cast<unsigned>(data.which()));
  }

  void check_all_parts_used() const {
    for (std::size_t i = 1; i < used_.size(); ++i)
      if (!used_[i]) fail("payload part {} of {} is not referred to by the header", i, used_.size() - 1);
  }

 private:
  zmq::message_t take_part(std::uint32_t index) {
    if (index == 0 || index >= parts_.size())
      fail("payload part {} does not exist (the message has {} payload parts)", index, parts_.size() - 1);
    if (used_[index]) fail("payload part {} is referred to twice", index);
    used_[index] = true;
    return std::move(parts_[index]);
  }

  multipart& parts_;
  std::vector<bool> used_;
};

std::string str(capnp::Text::Reader t) { return {t.begin(), t.size()}; }

control::counters read_counters(s::Counters::Reader c) {
  return {c.getIn(), c.getOut(), c.getBusyNs(), c.getQueueHwm(), c.getRestarts(), c.getDropped()};
}

// The elements of a List(Int64) or List(Float64) as values, read from the list's bytes (capnp lays them out
// little-endian, 8 bytes each, as this machine reads them): no accessor call and bounds check per element.
template <class T, class List>
void append_plain(std::vector<value>& out, List list) {
  static_assert(std::endian::native == std::endian::little, "the wire's plain lists are read as they lie");
  auto raw = capnp::AnyList::Reader(list).getRawBytes();
  auto n = list.size();
  // Anything but 8 bytes an element (a struct list standing in for it, which capnp's accessor would read
  // with a wider step) is refused: loom never sends one.
  if (raw.size() != std::size_t{n} * sizeof(T)) fail("a plain list of {} elements in {} bytes", n, raw.size());
  const auto* p = raw.begin();
  // Sized once, then written through a pointer: emplace_back kept the vector's end in memory each time.
  auto base = out.size();
  out.resize(base + n);
  auto* dst = out.data() + base;
  for (unsigned i = 0; i < n; ++i) {
    T x;
    std::memcpy(&x, p + std::size_t{i} * sizeof(T), sizeof(T));
    dst[i] = value(x);
  }
}

body decode_body(decoder& dec, s::Envelope::Reader r) {
  switch (r.which()) {
    case s::Envelope::BATCH: {
      auto b = r.getBatch();
      auto vs = b.getValues();
      auto is = b.getInts();
      auto fs = b.getFloats();
      if ((vs.size() > 0) + (is.size() > 0) + (fs.size() > 0) > 1)
        fail("a batch with {} values, {} ints and {} floats (one kind only)", vs.size(), is.size(), fs.size());
      local::batch_msg m{b.getLink(), {}};
      m.values.reserve(vs.size() + is.size() + fs.size());
      for (auto v : vs) m.values.push_back(dec.value(v));
      if (is.size() > 0) append_plain<std::int64_t>(m.values, is);
      if (fs.size() > 0) append_plain<double>(m.values, fs);
      m.first = b.getFirst();
      if (b.hasTags() && b.hasTagRuns()) fail("a batch with both lineage tags and tag runs");
      if (b.hasTags()) {
        auto ts = b.getTags();
        if (ts.size() != m.values.size())
          fail("a batch of {} values with {} lineage tags", m.values.size(), ts.size());
        for (auto t : ts) m.tags.push_back(local::lineage{t.getLink(), t.getNth(), t.getIndex()});
      }
      if (b.hasTagRuns()) {
        auto rs = b.getTagRuns();
        std::uint64_t total = 0;
        for (auto r : rs) {
          if (r.getCount() == 0) fail("a batch with an empty lineage tag run");
          if (r.getIndex() > std::numeric_limits<std::uint64_t>::max() - r.getCount())
            fail("a lineage tag run whose indexes pass 2^64");
          total += r.getCount();
        }
        if (total != m.values.size())
          fail("a batch of {} values with {} lineage tags (in {} runs)", m.values.size(), total, rs.size());
        for (auto r : rs) m.tags.push_run(r.getLink(), r.getNth(), r.getIndex(), r.getCount());
      }
      return m;
    }
    case s::Envelope::CREDIT: return local::credit_msg{r.getCredit().getLink(), r.getCredit().getCredits()};
    case s::Envelope::EOS: return local::eos_msg{r.getEos().getLink()};
    case s::Envelope::CALL:
      return local::call_msg{r.getCall().getId(), dec.value(r.getCall().getRequest()), r.getCall().getTraceParent()};
    case s::Envelope::REPLY: {
      auto rr = r.getReply();
      return local::reply_msg{rr.getId(), rr.getOk(), dec.value(rr.getValue()), str(rr.getError())};
    }
    case s::Envelope::CANCEL_CALL: return local::cancel_call_msg{r.getCancelCall().getId()};
    case s::Envelope::BARRIER: return local::barrier_msg{r.getBarrier().getLink(), r.getBarrier().getEpoch()};
  }
  fail("unknown envelope body tag {}", static_cast<unsigned>(r.which()));
}

control::snapshot_part decode_part(decoder& dec, s::SnapshotPart::Reader r) {
  return {r.getEpoch(), r.getInstance(), dec.value(r.getPart())};
}

control::body decode_control(decoder& dec, s::Control::Reader r) {
  switch (r.which()) {
    case s::Control::HELLO: return control::hello{str(r.getHello().getWorker())};
    case s::Control::DEPLOY: {
      auto d = r.getDeploy();
      control::deploy out{str(d.getGraphYaml()), {}, str(d.getExpandedGraph()), str(d.getKinds()), str(d.getTrace()),
                          d.getLinkWindow(), d.getRestoreEpoch(), {}};
      for (auto part : d.getRestore()) {
        out.restore.push_back(decode_part(dec, part));
        if (out.restore.back().epoch != out.restore_epoch)
          fail("a deploy restoring epoch {} with a part of epoch {}", out.restore_epoch, out.restore.back().epoch);
      }
      auto p = d.getPlan();
      for (auto h : p.getHosts()) out.plan.hosts.push_back({str(h.getName()), str(h.getDataAddress()), str(h.getPublicKey())});
      for (auto i : p.getInstanceHost()) {
        if (i >= out.plan.hosts.size())
          fail("plan places instance {} on host {}, but the plan has {} hosts", out.plan.instance_host.size(), i,
               out.plan.hosts.size());
        out.plan.instance_host.push_back(i);
      }
      for (auto dev : p.getInstanceDevice()) {
        if (dev < -1) fail("plan places instance {} on device {}", out.plan.instance_device.size(), dev);
        out.plan.instance_device.push_back(dev);
      }
      if (!out.plan.instance_device.empty() && out.plan.instance_device.size() != out.plan.instance_host.size())
        fail("plan has {} devices for {} instances", out.plan.instance_device.size(), out.plan.instance_host.size());
      return out;
    }
    case s::Control::START: return control::start{};
    case s::Control::CANCEL: return control::cancel{str(r.getCancel().getReason())};
    case s::Control::DONE: {
      auto d = r.getDone();
      return control::done{d.getInstance(), d.getFailed(), str(d.getError()), read_counters(d.getCounters()),
                           d.getCancelled()};
    }
    case s::Control::RELEASE: return control::release{};
    case s::Control::HEARTBEAT: {
      auto h = r.getHeartbeat();
      return control::heartbeat{h.getSeq(), h.getTimeNs(), str(h.getSamples()), h.getEchoUnixNs()};
    }
    case s::Control::SPANS: return control::spans{str(r.getSpans())};
    case s::Control::ADOPT:
      return control::adopt{r.getAdopt().getInstance(), r.getAdopt().getHost(), r.getAdopt().getEpoch()};
    case s::Control::RESUME: return control::resume{r.getResume()};
    case s::Control::SNAPSHOT: return control::snapshot{r.getSnapshot()};
    case s::Control::SNAPSHOT_PART: return decode_part(dec, r.getSnapshotPart());
    case s::Control::DECIDE: {
      auto d = r.getDecide();
      auto verdict = str(d.getVerdict());
      auto what = loom::verdict_of(verdict);
      if (!what) fail("a decision whose verdict is `{}` (approve, reject or edit)", verdict);
      return control::decide{d.getInstance(), d.getId(),
                             loom::decision{*what, dec.value(d.getEdited()), str(d.getReason()), str(d.getBy())}};
    }
    case s::Control::ASKED: return control::asked{};
    case s::Control::RUN_ENDED: return control::run_ended{r.getRunEnded().getOk(), str(r.getRunEnded().getError())};
    case s::Control::REFUSED: return control::refused{str(r.getRefused().getReason())};
    case s::Control::PROGRESS: {
      control::progress p;
      for (auto x : r.getProgress().getInstances()) {
        p.instances.push_back({x.getInstance(), read_counters(x.getCounters()), x.getQueued()});
      }
      for (auto e : r.getProgress().getEdges())
        p.edges.push_back({str(e.getFrom()), str(e.getFromNode()), str(e.getTo()), str(e.getLabel()), e.getBlockedNs(),
                           e.getBlocked()});
      return p;
    }
    case s::Control::ACK: {
      control::ack a;
      for (auto x : r.getAck().getStreams())
        a.streams.push_back({stream_key{x.getRun(), x.getFrom(), x.getTo()}, x.getNext()});
      return a;
    }
  }
  fail("unknown control tag {}", static_cast<unsigned>(r.which()));
}

message decode_frame(multipart& parts, const decode_limits& limits) {
  if (parts.empty()) fail("empty message");
  auto& head = parts[0];
  if (head.size() == 0) fail("empty header");
  if (head.size() % sizeof(capnp::word) != 0)
    fail("header of {} bytes is not a whole number of 8-byte words", head.size());
  if (head.size() > limits.max_header_bytes) fail("header of {} bytes exceeds {}", head.size(), limits.max_header_bytes);
  const std::size_t words = head.size() / sizeof(capnp::word);
  kj::Array<capnp::word> aligned;  // only when zmq handed us a misaligned header
  kj::ArrayPtr<const capnp::word> array;
  if (reinterpret_cast<std::uintptr_t>(head.data()) % alignof(capnp::word) == 0) {
    array = kj::ArrayPtr<const capnp::word>(static_cast<const capnp::word*>(head.data()), words);
  } else {
    aligned = kj::heapArray<capnp::word>(words);
    std::memcpy(aligned.begin(), head.data(), head.size());
    array = kj::ArrayPtr<const capnp::word>(aligned.begin(), aligned.size());
  }
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = limits.traversal_words ? limits.traversal_words : 2 * words + 1024;
  opts.nestingLimit = limits.nesting;
  capnp::FlatArrayMessageReader reader(array, opts);
  if (reader.getEnd() != array.end())
    fail("{} bytes after the end of the header message",
         (array.end() - reader.getEnd()) * static_cast<std::ptrdiff_t>(sizeof(capnp::word)));
  auto frame = reader.getRoot<s::Frame>();
  if (frame.getVersion() != s::WIRE_VERSION)
    fail("wire version {}, this build speaks version {}", frame.getVersion(), s::WIRE_VERSION);
  decoder dec(parts);
  switch (frame.which()) {
    case s::Frame::DATA: {
      auto e = frame.getData();
      envelope out{e.getRun(), e.getFrom(), e.getTo(), e.getSeq(), decode_body(dec, e)};
      if (e.which() == s::Envelope::CREDIT) {
        auto c = e.getCredit();
        out.ack = c.getAck();
        if (c.hasAfter()) {
          auto fs = c.getAfter();
          if (fs.size() > max_follows)
            fail("a credit that follows {} data streams (at most {})", fs.size(), max_follows);
          out.after.reserve(fs.size());
          for (auto f : fs) out.after.push_back({f.getTo(), f.getNext()});
        }
      }
      out.epoch = e.getEpoch();
      out.ack_now = e.getAckNow();
      dec.check_all_parts_used();
      return out;
    }
    case s::Frame::CONTROL: {
      if (parts.size() > 1) fail("control message with {} payload parts (expected none)", parts.size() - 1);
      auto c = frame.getControl();
      return control_msg{c.getRun(), decode_control(dec, c)};
    }
  }
  fail("unknown frame tag {}", static_cast<unsigned>(frame.which()));
}

}  // namespace

decoded decode(multipart parts, const decode_limits& limits) {
  try {
    return {decode_frame(parts, limits), {}};
  } catch (const decode_failure& e) {
    return {std::nullopt, e.what()};
  } catch (const kj::Exception& e) {
    return {std::nullopt, fmt::format("malformed header: {}", e.getDescription().cStr())};
  } catch (const std::exception& e) {  // e.g. std::bad_alloc, or a tensor the constructor refuses
    return {std::nullopt, fmt::format("malformed message: {}", e.what())};
  }
}

}  // namespace loom::transport
