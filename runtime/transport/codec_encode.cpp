// runtime/transport/codec_encode.cpp: building loom.capnp frames (codec.hpp's encode). Values are written by the
// one writer of runtime/wire/value_capnp.hpp (the state file's too); the encoder here is the wire's side of
// it: large payloads as ZeroMQ parts of their own, borrowing the value's memory, its exceptions and wording.
// The reading side is codec_decode.cpp.
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

std::string to_string(const stream_key& k) { return fmt::format("run {} stream {}->{}", k.run, k.from, k.to); }

namespace {

namespace s = schema;
using detail::wire_words;

// Frees what a zmq part borrowed once ZeroMQ has sent it (any thread).
template <class T>
void free_holder(void*, void* hint) {
  std::unique_ptr<T> owned(static_cast<T*>(hint));
}

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

void write_counters(s::Counters::Builder c, const control::counters& x) {
  c.setIn(x.in);
  c.setOut(x.out);
  c.setBusyNs(x.busy_ns);
  c.setQueueHwm(x.queue_hwm);
  c.setRestarts(x.restarts);
  c.setDropped(x.dropped);
}

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
          write_counters(d.initCounters(), m.counters);
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
            write_counters(is[i].initCounters(), x.counters);
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
}  // namespace loom::transport
