// runtime/transport/codec.cpp: building and checking loom.capnp frames. Values are written and read by the one
// writer and reader of runtime/wire/value_capnp.hpp (the state file's too); the encoder and decoder here are
// the wire's side of them: large payloads as ZeroMQ parts of their own, its exceptions and its wording.
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

namespace loom::transport {

std::string to_string(const stream_key& k) { return fmt::format("run {} stream {}->{}", k.run, k.from, k.to); }

namespace {

namespace s = schema;

// The wire's lines (tests/transport and docs/wire.md name them).
constexpr wire::wording wire_words{
    .too_deep = "value nested deeper than {} lists and maps",
    .too_long = "list of {1} elements is too long for the wire",
    .too_large = "{} of {} bytes is too large for the wire (at most {})",
    .on_device = "tensor on device {} cannot go on the wire; copy it to the host first",
    .dimensions = "tensor of {} dimensions (at most {})",
    .negative = "tensor dimension {} is negative",
    .overflow = "tensor shape overflows 64 bits",
    .data_size = "tensor {} of shape [{}] needs {} bytes of data, got {}",
};

// Frees what a zmq part borrowed once ZeroMQ has sent it (any thread).
template <class T>
void free_holder(void*, void* hint) {
  std::unique_ptr<T> owned(static_cast<T*>(hint));
}

// ---------------------------------------------------------------------------------------------- encoding

// The wire's sink for wire::write: small payloads inline, large ones as parts of their own.
class encoder {
 public:
  static constexpr const wire::wording& words = wire_words;
  [[noreturn]] static void refuse(std::string line) { throw encode_error(std::move(line)); }

  encoder(const encode_options& opts, multipart& parts) : opts_(opts), parts_(parts) {}

  void value(s::Value::Builder b, const loom::value& v) { wire::write(b, v, *this); }

  void bytes(s::Payload::Builder b, const loom::value& v) {
    const auto& by = v.as_bytes();
    payload(b, by.data(), by.size(), [&] { return std::make_unique<loom::value>(v); });
  }

  void tensor_data(s::Payload::Builder b, const loom::tensor& t) {
    payload(b, t.data()->data(), t.nbytes(),
            [&] { return std::make_unique<std::shared_ptr<const storage>>(t.data()); });
  }

 private:
  // Small payloads go into the header; large ones become their own part, borrowing the value's memory.
  template <class MakeHolder>
  void payload(s::Payload::Builder b, const std::byte* data, std::size_t n, MakeHolder make_holder) {
    if (n < opts_.inline_limit || n == 0) {
      b.setInline(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data), n));
      return;
    }
    auto holder = make_holder();
    using holder_t = typename decltype(holder)::element_type;
    b.setFrame(static_cast<std::uint32_t>(parts_.size()));
    // zmq's API takes a non-const pointer; it only reads the bytes.
    parts_.emplace_back(const_cast<std::byte*>(data), n, &free_holder<holder_t>, holder.get());
    holder.release();  // zmq owns it now and frees it through free_holder
  }

  const encode_options& opts_;
  multipart& parts_;
};

// Calls f(value) for each of a batch's values: its own, then those of `more` (envelope::more).
template <class F>
void each_value(const local::batch_msg& m, const std::vector<std::vector<value>>& more, F&& f) {
  for (const auto& v : m.values) f(v);
  for (const auto& piece : more)
    for (const auto& v : piece) f(v);
}

void encode_body(encoder& enc, s::Envelope::Builder b, const body& msg, std::uint64_t ack,
                 const std::vector<follows>& after, const std::vector<std::vector<value>>& more) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, local::batch_msg>) {
          auto bb = b.initBatch();
          bb.setLink(m.link);
          auto total = m.values.size();
          for (const auto& piece : more) total += piece.size();
          if (total > wire::max_elements) throw encode_error("batch too long for the wire");
          auto n = static_cast<unsigned>(total);
          // A batch of ints (or of floats) goes as a plain list: 8 bytes a value, no struct per value.
          bool ints = n > 0, floats = n > 0;
          each_value(m, more, [&](const value& v) {
            ints = ints && v.kind() == value::type::integer;
            floats = floats && v.kind() == value::type::floating;
          });
          unsigned i = 0;
          if (ints) {
            auto is = bb.initInts(n);
            each_value(m, more, [&](const value& v) { is.set(i++, v.as_int()); });
          } else if (floats) {
            auto fs = bb.initFloats(n);
            each_value(m, more, [&](const value& v) { fs.set(i++, v.as_float()); });
          } else {
            auto vs = bb.initValues(n);
            each_value(m, more, [&](const value& v) { enc.value(vs[i++], v); });
          }
          if (m.first != local::no_index) bb.setFirst(m.first);
          if (!m.tags.empty()) {
            // A movable instance that gives one output per input tags its outputs (link, 0, i), (link, 0,
            // i + 1), ...: such runs go as one LineageRun each (24 bytes) instead of a Lineage per value
            // (16 bytes each), when that is shorter.
            const auto& runs = m.tags.runs();
            if (runs.size() * 3 < m.tags.size() * 2) {
              auto rs = bb.initTagRuns(static_cast<unsigned>(runs.size()));
              for (unsigned r = 0; r < rs.size(); ++r) {
                rs[r].setLink(runs[r].link);
                rs[r].setNth(runs[r].nth);
                rs[r].setIndex(runs[r].index);
                rs[r].setCount(runs[r].count);
              }
              return;
            }
            auto ts = bb.initTags(static_cast<unsigned>(m.tags.size()));
            unsigned i = 0;
            for (const auto& r : runs)
              for (std::uint32_t k = 0; k < r.count; ++k, ++i) {
                ts[i].setLink(r.link);
                ts[i].setNth(r.nth);
                ts[i].setIndex(r.index + k);
              }
          }
        } else if constexpr (std::is_same_v<T, local::credit_msg>) {
          auto cb = b.initCredit();
          cb.setLink(m.link);
          cb.setCredits(m.credits);
          cb.setAck(ack);
          if (!after.empty()) {
            auto fs = cb.initAfter(static_cast<unsigned>(after.size()));
            for (unsigned i = 0; i < fs.size(); ++i) {
              fs[i].setTo(after[i].to);
              fs[i].setNext(after[i].next);
            }
          }
        } else if constexpr (std::is_same_v<T, local::eos_msg>) {
          b.initEos().setLink(m.link);
        } else if constexpr (std::is_same_v<T, local::call_msg>) {
          auto cb = b.initCall();
          cb.setId(m.id);
          enc.value(cb.initRequest(), m.request);
          if (m.trace_parent != 0) cb.setTraceParent(m.trace_parent);
        } else if constexpr (std::is_same_v<T, local::cancel_call_msg>) {
          b.initCancelCall().setId(m.id);
        } else if constexpr (std::is_same_v<T, local::barrier_msg>) {
          auto bb = b.initBarrier();
          bb.setLink(m.link);
          bb.setEpoch(m.epoch);
        } else {
          auto rb = b.initReply();
          rb.setId(m.id);
          rb.setOk(m.ok);
          enc.value(rb.initValue(), m.reply);
          rb.setError(capnp::Text::Reader(m.error.data(), m.error.size()));
        }
      },
      msg);
}

capnp::Text::Reader text(const std::string& s) { return {s.data(), s.size()}; }

void encode_part(encoder& enc, s::SnapshotPart::Builder b, const control::snapshot_part& p) {
  b.setEpoch(p.epoch);
  b.setInstance(p.instance);
  enc.value(b.initPart(), p.part);
}

void encode_control(encoder& enc, s::Control::Builder b, const control::body& msg) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, control::hello>) {
          b.initHello().setWorker(text(m.worker));
        } else if constexpr (std::is_same_v<T, control::deploy>) {
          auto d = b.initDeploy();
          d.setGraphYaml(text(m.graph_yaml));
          auto p = d.initPlan();
          auto hs = p.initHosts(static_cast<unsigned>(m.plan.hosts.size()));
          for (unsigned i = 0; i < hs.size(); ++i) {
            hs[i].setName(text(m.plan.hosts[i].name));
            hs[i].setDataAddress(text(m.plan.hosts[i].data_address));
            hs[i].setPublicKey(text(m.plan.hosts[i].public_key));
          }
          auto ih = p.initInstanceHost(static_cast<unsigned>(m.plan.instance_host.size()));
          for (unsigned i = 0; i < ih.size(); ++i) ih.set(i, m.plan.instance_host[i]);
          auto idev = p.initInstanceDevice(static_cast<unsigned>(m.plan.instance_device.size()));
          for (unsigned i = 0; i < idev.size(); ++i) idev.set(i, m.plan.instance_device[i]);
          d.setExpandedGraph(text(m.expanded_graph));
          d.setKinds(text(m.kinds));
          d.setTrace(text(m.trace));
          d.setLinkWindow(m.link_window);
          d.setRestoreEpoch(m.restore_epoch);
          auto rs = d.initRestore(static_cast<unsigned>(m.restore.size()));
          for (unsigned i = 0; i < rs.size(); ++i) encode_part(enc, rs[i], m.restore[i]);
        } else if constexpr (std::is_same_v<T, control::start>) {
          b.setStart();
        } else if constexpr (std::is_same_v<T, control::cancel>) {
          b.initCancel().setReason(text(m.reason));
        } else if constexpr (std::is_same_v<T, control::done>) {
          auto d = b.initDone();
          d.setInstance(m.instance);
          d.setFailed(m.failed);
          d.setCancelled(m.cancelled);
          d.setError(text(m.error));
          auto c = d.initCounters();
          c.setIn(m.counters.in);
          c.setOut(m.counters.out);
          c.setBusyNs(m.counters.busy_ns);
          c.setQueueHwm(m.counters.queue_hwm);
          c.setRestarts(m.counters.restarts);
          c.setDropped(m.counters.dropped);
        } else if constexpr (std::is_same_v<T, control::release>) {
          b.setRelease();
        } else if constexpr (std::is_same_v<T, control::heartbeat>) {
          auto h = b.initHeartbeat();
          h.setSeq(m.seq);
          h.setTimeNs(m.time_ns);
          if (!m.samples.empty()) h.setSamples(text(m.samples));
          h.setEchoUnixNs(m.echo_unix_ns);
        } else if constexpr (std::is_same_v<T, control::run_ended>) {
          auto r = b.initRunEnded();
          r.setOk(m.ok);
          r.setError(text(m.error));
        } else if constexpr (std::is_same_v<T, control::refused>) {
          b.initRefused().setReason(text(m.reason));
        } else if constexpr (std::is_same_v<T, control::progress>) {
          auto p = b.initProgress();
          auto is = p.initInstances(static_cast<unsigned>(m.instances.size()));
          for (unsigned i = 0; i < is.size(); ++i) {
            const auto& x = m.instances[i];
            is[i].setInstance(x.instance);
            is[i].setQueued(x.queued);
            auto c = is[i].initCounters();
            c.setIn(x.counters.in);
            c.setOut(x.counters.out);
            c.setBusyNs(x.counters.busy_ns);
            c.setQueueHwm(x.counters.queue_hwm);
            c.setRestarts(x.counters.restarts);
            c.setDropped(x.counters.dropped);
          }
          auto es = p.initEdges(static_cast<unsigned>(m.edges.size()));
          for (unsigned i = 0; i < es.size(); ++i) {
            const auto& e = m.edges[i];
            es[i].setFrom(text(e.from));
            es[i].setFromNode(text(e.from_node));
            es[i].setTo(text(e.to));
            es[i].setLabel(text(e.label));
            es[i].setBlockedNs(e.blocked_ns);
            es[i].setBlocked(e.blocked);
          }
        } else if constexpr (std::is_same_v<T, control::spans>) {
          b.setSpans(text(m.json));
        } else if constexpr (std::is_same_v<T, control::adopt>) {
          auto a = b.initAdopt();
          a.setInstance(m.instance);
          a.setHost(m.host);
          a.setEpoch(m.epoch);
        } else if constexpr (std::is_same_v<T, control::resume>) {
          b.setResume(m.instance);
        } else if constexpr (std::is_same_v<T, control::snapshot>) {
          b.setSnapshot(m.epoch);
        } else if constexpr (std::is_same_v<T, control::snapshot_part>) {
          encode_part(enc, b.initSnapshotPart(), m);
        } else if constexpr (std::is_same_v<T, control::decide>) {
          auto d = b.initDecide();
          d.setInstance(m.instance);
          d.setId(m.id);
          d.setVerdict(text(std::string(loom::to_string(m.d.what))));
          enc.value(d.initEdited(), m.d.edited);
          d.setReason(text(m.d.reason));
          d.setBy(text(m.d.by));
        } else if constexpr (std::is_same_v<T, control::asked>) {
          b.setAsked();
        } else {
          auto l = b.initAck().initStreams(static_cast<unsigned>(m.streams.size()));
          for (unsigned i = 0; i < l.size(); ++i) {
            l[i].setRun(m.streams[i].stream.run);
            l[i].setFrom(m.streams[i].stream.from);
            l[i].setTo(m.streams[i].stream.to);
            l[i].setNext(m.streams[i].next);
          }
        }
      },
      msg);
}

// The header becomes part 0; its flat array is handed to zmq without another copy.
template <class Fill>
multipart encode_frame(const encode_options& opts, Fill fill) {
  multipart parts;
  parts.emplace_back();  // the header, filled last
  capnp::MallocMessageBuilder builder(512);
  auto frame = builder.initRoot<s::Frame>();
  frame.setVersion(s::WIRE_VERSION);
  encoder enc(opts, parts);
  fill(enc, frame);
  auto flat = std::make_unique<kj::Array<capnp::word>>(capnp::messageToFlatArray(builder));
  auto bytes = flat->asBytes();
  parts[0] = zmq::message_t(bytes.begin(), bytes.size(), &free_holder<kj::Array<capnp::word>>, flat.get());
  flat.release();  // zmq owns it now
  return parts;
}

// ---------------------------------------------------------------------------------------------- decoding

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

  loom::value bytes(s::Payload::Reader p) {
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
      auto c = d.getCounters();
      return control::done{d.getInstance(), d.getFailed(), str(d.getError()),
                           {c.getIn(), c.getOut(), c.getBusyNs(), c.getQueueHwm(), c.getRestarts(), c.getDropped()},
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
        auto c = x.getCounters();
        p.instances.push_back({x.getInstance(),
                               {c.getIn(), c.getOut(), c.getBusyNs(), c.getQueueHwm(), c.getRestarts(), c.getDropped()},
                               x.getQueued()});
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

multipart encode(const envelope& e, const encode_options& opts) {
  return encode_frame(opts, [&](encoder& enc, s::Frame::Builder f) {
    auto b = f.initData();
    b.setRun(e.run);
    b.setFrom(e.from);
    b.setTo(e.to);
    b.setSeq(e.seq);
    if (e.epoch != 0) b.setEpoch(e.epoch);
    if (e.ack_now) b.setAckNow(true);
    encode_body(enc, b, e.body, e.ack, e.after, e.more);
  });
}

multipart encode(const control_msg& c, const encode_options& opts) {
  // A control message is one part: the values a snapshot carries go inside the header, whatever their size.
  auto inline_all = opts;
  inline_all.inline_limit = std::numeric_limits<std::size_t>::max();
  return encode_frame(inline_all, [&](encoder& enc, s::Frame::Builder f) {
    auto b = f.initControl();
    b.setRun(c.run);
    encode_control(enc, b, c.body);
  });
}

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
