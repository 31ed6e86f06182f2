// tests/transport/codec_test.cpp: every value and message survives a round trip through loom.capnp, and
// hostile bytes (truncated, random, mutated, wrong tags, lying shapes and counts) give errors, never crashes.
#include <doctest/doctest.h>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "loom/runtime/transport/codec.hpp"
#include "loom/runtime/transport/loom.capnp.h"

using namespace loom;
using namespace loom::transport;
namespace s = loom::transport::schema;

namespace {

envelope batch_of(std::vector<value> values, std::uint64_t seq = 0) {
  return envelope{7, 3, 12, seq, local::batch_msg{5, std::move(values)}};
}

envelope round_trip(const envelope& e, encode_options o = {}) {
  auto d = decode(encode(e, o));
  INFO(d.error);
  REQUIRE(d);
  auto* out = std::get_if<envelope>(&*d.msg);
  REQUIRE(out);
  CHECK(out->run == e.run);
  CHECK(out->from == e.from);
  CHECK(out->to == e.to);
  CHECK(out->seq == e.seq);
  return std::move(*out);
}

control_msg round_trip(const control_msg& c) {
  auto d = decode(encode(c));
  INFO(d.error);
  REQUIRE(d);
  auto* out = std::get_if<control_msg>(&*d.msg);
  REQUIRE(out);
  CHECK(out->run == c.run);
  return std::move(*out);
}

std::vector<value> every_kind_of_value() {
  std::vector<std::byte> small(17), large(100000);
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = std::byte(i * 7);
  return {
      value{},
      value{true},
      value{false},
      value{std::numeric_limits<std::int64_t>::min()},
      value{std::int64_t{-1}},
      value{std::numeric_limits<std::int64_t>::max()},
      value{3.25},
      value{-std::numeric_limits<double>::infinity()},
      value{std::string("")},
      value{std::string("with\0nul", 8)},
      value{bytes{}},
      value{bytes(small)},
      value{bytes(large)},
      value{value_list{}},
      value{value_list{1, "two", value_list{3.0, value{}}}},
      value{value_map{{"z", 1}, {"a", value_map{{"k", "v"}}}, {"z", 2}}},  // order and repeats kept
      value{tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6})},
      value{tensor::from<double>({}, {42.0})},  // a scalar tensor
      value{tensor::zeros(dtype::i8, {0, 5})},
      value{tensor::zeros(dtype::bf16, {4096})},  // 8 KiB: out of line
      value{tensor::zeros(dtype::u8, {3, 1, 2})},
  };
}

multipart to_parts(capnp::MallocMessageBuilder& b, std::vector<std::vector<std::byte>> payloads = {}) {
  auto flat = capnp::messageToFlatArray(b);
  auto bytes = flat.asBytes();
  multipart parts;
  parts.emplace_back(bytes.begin(), bytes.size());
  for (auto& p : payloads) parts.emplace_back(p.data(), p.size());
  return parts;
}

s::Value::Builder value_in_batch(capnp::MallocMessageBuilder& b) {
  auto f = b.initRoot<s::Frame>();
  f.setVersion(s::WIRE_VERSION);
  auto e = f.initData();
  e.setRun(1);
  return e.initBatch().initValues(1)[0];
}

template <class B>
void poke_u16(B b, unsigned index, std::uint16_t v) {
  capnp::AnyStruct::Builder any(kj::mv(b));
  auto data = any.getDataSection();
  std::memcpy(data.begin() + 2 * index, &v, 2);
}

std::string decode_error(multipart parts) {
  auto d = decode(std::move(parts));
  CHECK_FALSE(d);
  return d.error;
}

}  // namespace

TEST_CASE("every value type survives a round trip, inline and out of line" * doctest::timeout(10)) {
  auto values = every_kind_of_value();
  for (std::size_t limit : {std::size_t{0}, std::size_t{16}, std::size_t{4096}, std::size_t{1} << 30}) {
    CAPTURE(limit);
    auto out = round_trip(batch_of(values), {limit});
    auto& b = std::get<local::batch_msg>(out.body);
    CHECK(b.link == 5);
    REQUIRE(b.values.size() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      CAPTURE(i);
      CHECK(b.values[i] == values[i]);
      CHECK(b.values[i].kind() == values[i].kind());
    }
  }
}

TEST_CASE("a large tensor becomes its own part and is decoded without a copy" * doctest::timeout(10)) {
  auto t = tensor::zeros(dtype::f32, {512, 512});  // 1 MiB
  auto parts = encode(batch_of({value{t}}));
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].data() == static_cast<const void*>(t.data()->data()));  // sent from the value's memory
  CHECK(parts[1].size() == t.nbytes());
  const void* part_data = parts[1].data();
  auto d = decode(std::move(parts));
  REQUIRE(d);
  const auto& got = std::get<local::batch_msg>(std::get<envelope>(*d.msg).body).values.at(0).as_tensor();
  CHECK(dynamic_cast<const zmq_storage*>(got.data().get()) != nullptr);
  CHECK(static_cast<const void*>(got.data()->data()) == part_data);
  CHECK(got == t);
}

TEST_CASE("every data message survives a round trip" * doctest::timeout(10)) {
  auto c = round_trip(envelope{1, 2, 3, 4, local::credit_msg{9, 64}});
  CHECK(std::get<local::credit_msg>(c.body).link == 9);
  CHECK(std::get<local::credit_msg>(c.body).credits == 64);
  auto e = round_trip(envelope{1, 2, 3, 5, local::eos_msg{11}});
  CHECK(std::get<local::eos_msg>(e.body).link == 11);
  auto call = round_trip(envelope{1, 2, 3, 6, local::call_msg{77, value{value_map{{"q", "why"}}}}});
  CHECK(std::get<local::call_msg>(call.body).id == 77);
  CHECK(std::get<local::call_msg>(call.body).request == value{value_map{{"q", "why"}}});
  CHECK(std::get<local::call_msg>(call.body).trace_parent == 0);
  auto traced = round_trip(envelope{1, 2, 3, 7, local::call_msg{78, value{1}, 0x0123456789abcdefull}});
  CHECK(std::get<local::call_msg>(traced.body).trace_parent == 0x0123456789abcdefull);
  auto reply = round_trip(envelope{1, 2, 3, 7, local::reply_msg{77, false, value{}, "tool failed"}});
  auto& r = std::get<local::reply_msg>(reply.body);
  CHECK(r.id == 77);
  CHECK_FALSE(r.ok);
  CHECK(r.reply.is_null());
  CHECK(r.error == "tool failed");
  auto cancel = round_trip(envelope{1, 2, 3, 8, local::cancel_call_msg{77}});
  CHECK(std::get<local::cancel_call_msg>(cancel.body).id == 77);
  // A movable instance's batches: the index of the first value (to it) and lineage tags (from it).
  auto plain = std::get<local::batch_msg>(round_trip(envelope{1, 2, 3, 9, local::batch_msg{4, {value{1}}}}).body);
  CHECK(plain.first == local::no_index);
  CHECK(plain.tags.empty());
  local::batch_msg moving{4, {value{1}, value{2}}, 1234567890123ull, {{3, 0, 77}, {3, 1, 77}}};
  auto got = std::get<local::batch_msg>(round_trip(envelope{1, 2, 3, 10, moving}).body);
  CHECK(got.first == 1234567890123ull);
  CHECK(got.tags == moving.tags);
  CHECK(got.values == moving.values);
  CHECK(cancel.seq == 8);
  auto big = round_trip(envelope{std::numeric_limits<std::uint64_t>::max(), 0xFFFFFFFFu, 0, ~0ull, local::eos_msg{0}});
  CHECK(big.seq == ~0ull);
}

TEST_CASE("a movable instance's credit names the data it follows; its outputs may ask for an ack at once" *
          doctest::timeout(10)) {
  envelope credit{1, 2, 3, 4, local::credit_msg{0, 16}};
  credit.after = {{7, 120}, {9, 3}};
  credit.ack = 5;
  auto c = round_trip(credit);
  CHECK(c.after == credit.after);
  CHECK(c.ack == 5);
  CHECK_FALSE(c.ack_now);
  envelope out{1, 2, 7, 119, local::batch_msg{0, {value{1}}}};
  CHECK_FALSE(round_trip(out).ack_now);
  out.ack_now = true;
  CHECK(round_trip(out).ack_now);
  CHECK(round_trip(out).after.empty());
  // A credit naming more streams than any sender has is refused.
  credit.after.assign(max_follows + 1, follows{7, 1});
  CHECK(decode_error(encode(credit)) == fmt::format("a credit that follows {} data streams (at most {})",
                                                    max_follows + 1, max_follows));
}

TEST_CASE("a batch of ints or of floats travels as a plain list, 8 bytes a value, and comes back the same" *
          doctest::timeout(10)) {
  std::vector<value> ints, floats;
  for (std::int64_t i = 0; i < 256; ++i) ints.emplace_back(i * 1000003 - 7);
  ints.emplace_back(std::numeric_limits<std::int64_t>::min());
  for (int i = 0; i < 256; ++i) floats.emplace_back(i * 0.5 - 3.0);
  floats.emplace_back(-0.0);
  for (const auto& values : {ints, floats}) {
    auto parts = encode(batch_of(values));
    REQUIRE(parts.size() == 1);
    CHECK(parts[0].size() < values.size() * 8 + 200);  // a Value struct each would take 24 bytes a value
    auto got = std::get<local::batch_msg>(round_trip(batch_of(values)).body);
    REQUIRE(got.values.size() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      CHECK(got.values[i].kind() == values[i].kind());
      CHECK(got.values[i] == values[i]);
    }
  }
  CHECK(std::signbit(std::get<local::batch_msg>(round_trip(batch_of(floats)).body).values.back().as_float()));
  // Mixed ints and floats keep their kinds (no int becomes a float): the general encoding.
  auto mixed = std::get<local::batch_msg>(round_trip(batch_of({value{1}, value{2.5}, value{3}})).body);
  REQUIRE(mixed.values.size() == 3);
  CHECK(mixed.values[0].is_int());
  CHECK(mixed.values[1].is_float());
  CHECK(mixed.values[2].is_int());
  // Tags count every value, whichever list carries them.
  local::batch_msg tagged{5, {value{1}, value{2}}};
  tagged.tags = {{0, 0, 4}, {0, 0, 5}};
  auto t = std::get<local::batch_msg>(round_trip(envelope{7, 3, 12, 0, tagged}).body);
  REQUIRE(t.tags.size() == 2);
  CHECK(t.tags.expand()[1].index == 5);
}

TEST_CASE("a batch sent in pieces (envelope::more) arrives as one batch of all its values, in order" *
          doctest::timeout(10)) {
  // Ints in three pieces: one plain list of 8 bytes a value.
  envelope e = batch_of({value{1}, value{2}});
  e.more = {{value{3}}, {value{4}, value{5}}};
  auto parts = encode(e);
  REQUIRE(parts.size() == 1);
  auto got = std::get<local::batch_msg>(round_trip(e).body);
  CHECK(got.values == std::vector<value>{1, 2, 3, 4, 5});
  // A piece of another kind makes the whole batch go in the general encoding, each value its own kind.
  e.more = {{value{3}}, {value{4.5}, value{"five"}}};
  got = std::get<local::batch_msg>(round_trip(e).body);
  REQUIRE(got.values.size() == 5);
  CHECK(got.values[3].is_float());
  CHECK(got.values[4] == value{"five"});
  CHECK(got.values[2] == value{3});
  // Tags cover every piece's values.
  e.more = {{value{3}}};
  std::get<local::batch_msg>(e.body).tags = {{0, 0, 4}, {0, 0, 5}, {0, 0, 6}};
  got = std::get<local::batch_msg>(round_trip(e).body);
  CHECK(got.values == std::vector<value>{1, 2, 3});
  CHECK(got.tags.expand()[2].index == 6);
}

TEST_CASE("a batch that carries values in two lists, or tags that do not match its ints, gives an error" *
          doctest::timeout(10)) {
  capnp::MallocMessageBuilder b;
  auto f = b.initRoot<s::Frame>();
  f.setVersion(s::WIRE_VERSION);
  auto batch = f.initData().initBatch();
  batch.initValues(1)[0].setInt(1);
  batch.initInts(2);
  CHECK(decode_error(to_parts(b)) == "a batch with 1 values, 2 ints and 0 floats (one kind only)");
  capnp::MallocMessageBuilder c;
  auto g = c.initRoot<s::Frame>();
  g.setVersion(s::WIRE_VERSION);
  auto fb = g.initData().initBatch();
  fb.initInts(3);
  fb.initTags(2);
  CHECK(decode_error(to_parts(c)) == "a batch of 3 values with 2 lineage tags");
  capnp::MallocMessageBuilder both;
  auto bf = both.initRoot<s::Frame>();
  bf.setVersion(s::WIRE_VERSION);
  auto bb = bf.initData().initBatch();
  bb.initInts(1);
  bb.initTags(1);
  bb.initTagRuns(1)[0].setCount(1);
  CHECK(decode_error(to_parts(both)) == "a batch with both lineage tags and tag runs");
  capnp::MallocMessageBuilder runs;
  auto rf = runs.initRoot<s::Frame>();
  rf.setVersion(s::WIRE_VERSION);
  auto rb = rf.initData().initBatch();
  rb.initInts(3);
  auto rs = rb.initTagRuns(2);
  rs[0].setCount(1);
  rs[1].setCount(1);
  CHECK(decode_error(to_parts(runs)) == "a batch of 3 values with 2 lineage tags (in 2 runs)");
  rs[1].setCount(0);
  CHECK(decode_error(to_parts(runs)) == "a batch with an empty lineage tag run");
  rs[1].setCount(2);
  rs[1].setIndex(std::numeric_limits<std::uint64_t>::max() - 1);
  CHECK(decode_error(to_parts(runs)) == "a lineage tag run whose indexes pass 2^64");
  rs[1].setIndex(7);
  auto ok = decode(to_parts(runs), {});
  REQUIRE(ok);
  auto got = std::get<local::batch_msg>(std::get<envelope>(*ok.msg).body);
  CHECK(got.tags.expand() == std::vector<local::lineage>{{0, 0, 0}, {0, 0, 7}, {0, 0, 8}});
  // Ints are read straight from their list's bytes, 8 a value: a list laid out otherwise (a struct list of
  // two words an element standing in for List(Int64)) is refused, never read at the wrong step.
  capnp::MallocMessageBuilder wide;
  auto wf = wide.initRoot<s::Frame>();
  wf.setVersion(s::WIRE_VERSION);
  auto wb = wf.initData().initBatch();
  capnp::AnyStruct::Builder(kj::mv(wb)).getPointerSection()[2].initAsListOfAnyStruct(2, 0, 3);  // `ints` is pointer 2
  CHECK(decode_error(to_parts(wide)) == "a plain list of 3 elements in 48 bytes");
}

TEST_CASE("a movable instance's tags travel as runs when that is shorter, and come back one per value" *
          doctest::timeout(10)) {
  // One output per input: (link, 0, i), (link, 0, i + 1), ... two runs here (the index jumps at 100).
  local::batch_msg forward{5, {}};
  for (std::uint64_t i = 0; i < 200; ++i) {
    forward.values.emplace_back(static_cast<std::int64_t>(i));
    forward.tags.push_back({2, 0, i < 100 ? 1000 + i : 5000 + i});
  }
  auto parts = encode(envelope{7, 3, 12, 0, forward});
  REQUIRE(parts.size() == 1);
  CHECK(parts[0].size() < 200 * 8 + 300);  // a Lineage each would add 16 bytes a value
  auto got = std::get<local::batch_msg>(round_trip(envelope{7, 3, 12, 0, forward}).body);
  CHECK(got.tags == forward.tags);
  CHECK(got.values == forward.values);
  // Several outputs per input (nth counts up, the index stays): no runs, a Lineage each, the same tags back.
  local::batch_msg fan{5, {}};
  for (std::uint32_t i = 0; i < 50; ++i) {
    fan.values.emplace_back(static_cast<std::int64_t>(i));
    fan.tags.push_back({1, i % 5, 300 + i / 5});
  }
  auto fparts = encode(envelope{7, 3, 12, 0, fan});
  CHECK(fparts[0].size() > 50 * 16);
  CHECK(std::get<local::batch_msg>(round_trip(envelope{7, 3, 12, 0, fan}).body).tags == fan.tags);
}

TEST_CASE("every control message survives a round trip" * doctest::timeout(10)) {
  using namespace control;
  CHECK(std::get<hello>(round_trip({0, hello{"w1"}}).body).worker == "w1");
  plan p{{{"h1", "tcp://10.0.0.1:7100"}, {"h2", "tcp://10.0.0.2:7100"}}, {0, 1, 1, 0}};
  auto d = std::get<deploy>(round_trip({9, deploy{"nodes: []\n", p}}).body);
  CHECK(d.graph_yaml == "nodes: []\n");
  CHECK(d.plan == p);
  plan with_devices{p.hosts, p.instance_host, {0, -1, 3, -1}};
  CHECK(std::get<deploy>(round_trip({9, deploy{"", with_devices}}).body).plan == with_devices);
  CHECK(std::holds_alternative<start>(round_trip({9, start{}}).body));
  CHECK(std::get<cancel>(round_trip({9, cancel{"SIGINT"}}).body).reason == "SIGINT");
  done dn{4, true, "boom", {1, 2, 3, 4, 5, 6}};
  auto dd = std::get<done>(round_trip({9, dn}).body);
  CHECK(dd.instance == 4);
  CHECK(dd.failed);
  CHECK(dd.error == "boom");
  CHECK(dd.counters == dn.counters);
  CHECK_FALSE(dd.cancelled);
  CHECK(std::get<done>(round_trip({9, done{4, false, "", {}, true}}).body).cancelled);
  plan keyed{{{"a", "tcp://10.0.0.1:7100", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"}}, {0}};
  auto dk = std::get<deploy>(round_trip({9, deploy{"g", keyed, "instance 0 ...\n", "kind a ...\n"}}).body);
  CHECK(dk.plan == keyed);
  CHECK(dk.expanded_graph == "instance 0 ...\n");
  CHECK(dk.kinds == "kind a ...\n");
  CHECK(dk.trace.empty());
  CHECK(dk.link_window == 0);
  CHECK(std::get<deploy>(round_trip({9, deploy{.graph_yaml = "g", .plan = keyed, .link_window = 4096}}).body)
            .link_window == 4096);
  auto tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  CHECK(std::get<deploy>(round_trip({9, deploy{.graph_yaml = "g", .plan = keyed, .trace = tp}}).body).trace == tp);
  CHECK(std::get<spans>(round_trip({9, spans{"{\"host\": \"a\"}"}}).body).json == "{\"host\": \"a\"}");
  CHECK(std::holds_alternative<release>(round_trip({9, release{}}).body));
  CHECK(std::get<adopt>(round_trip({9, adopt{7, 2, 3}}).body) == adopt{7, 2, 3});
  CHECK(std::get<resume>(round_trip({9, resume{7}}).body) == resume{7});
  auto hb = std::get<heartbeat>(round_trip({0, heartbeat{12, -5}}).body);
  CHECK(hb.seq == 12);
  CHECK(hb.time_ns == -5);
  CHECK(hb.echo_unix_ns == 0);
  CHECK(std::get<heartbeat>(round_trip({0, heartbeat{.seq = 12, .time_ns = -5, .echo_unix_ns = 1764000000123456789}}).body).echo_unix_ns ==
        1764000000123456789);
  CHECK(hb.samples.empty());
  auto hs = std::get<heartbeat>(round_trip({0, heartbeat{13, 7, "# TYPE a counter\na 1\n"}}).body);
  CHECK(hs.samples == "# TYPE a counter\na 1\n");
  auto re = std::get<run_ended>(round_trip({9, run_ended{false, "lost h2"}}).body);
  CHECK_FALSE(re.ok);
  CHECK(re.error == "lost h2");
  CHECK(std::get<refused>(round_trip({0, refused{"busy"}}).body).reason == "busy");
  progress pr{{{3, {10, 9, 8, 7, 6, 5}, 4}, {7, {}, 0}}, {{"a[1]", "a", "b", "a.out -> b.in", 1234, true}}};
  auto pd = std::get<progress>(round_trip({9, pr}).body);
  CHECK(pd.instances == pr.instances);
  CHECK(pd.edges == pr.edges);
}

TEST_CASE("a snapshot's barrier, its parts and a resumed deploy survive a round trip (wire v4)" * doctest::timeout(10)) {
  using namespace control;
  // The barrier travels in its link's stream, like an end of stream.
  auto b = std::get<local::barrier_msg>(round_trip(envelope{1, 2, 3, 4, local::barrier_msg{5, 77}}).body);
  CHECK(b.link == 5);
  CHECK(b.epoch == 77);
  CHECK(std::get<snapshot>(round_trip({9, snapshot{12}}).body) == snapshot{12});
  // A part is a value, whatever it holds: bytes past the inline limit stay inside the one control part.
  value part{value_map{{"instance", 3}, {"blob", value(bytes(std::vector<std::byte>(10000, std::byte{7})))}}};
  auto sp = std::get<snapshot_part>(round_trip({9, snapshot_part{12, 3, part}}).body);
  CHECK(sp.epoch == 12);
  CHECK(sp.instance == 3);
  CHECK(sp.part == part);
  plan p{{{"h1", "tcp://10.0.0.1:7100"}}, {0, 0}};
  deploy d{.graph_yaml = "g", .plan = p, .restore_epoch = 12, .restore = {{12, 0, value(1)}, {12, 1, part}}};
  auto dd = std::get<deploy>(round_trip({9, d}).body);
  CHECK(dd.restore_epoch == 12);
  REQUIRE(dd.restore.size() == 2);
  CHECK(dd.restore[1].instance == 1);
  CHECK(dd.restore[1].part == part);
  // A person's decision, to the worker of its instance; an instance's ask, to the driver.
  loom::decision edit{loom::decision::verdict::edit, value("fixed"), "", "ada@host"};
  auto dc = std::get<decide>(round_trip({9, decide{4, 17, edit}}).body);
  CHECK(dc.instance == 4);
  CHECK(dc.id == 17);
  CHECK(dc.d.what == loom::decision::verdict::edit);
  CHECK(dc.d.edited == value("fixed"));
  CHECK(dc.d.by == "ada@host");
  auto rj = std::get<decide>(round_trip({9, decide{4, 18, {loom::decision::verdict::reject, {}, "no", "x"}}}).body);
  CHECK(rj.d.what == loom::decision::verdict::reject);
  CHECK(rj.d.reason == "no");
  CHECK(std::holds_alternative<asked>(round_trip({9, asked{}}).body));
  // A decision whose verdict is none of the three is refused, naming it.
  capnp::MallocMessageBuilder odd;
  auto of = odd.initRoot<s::Frame>();
  of.setVersion(s::WIRE_VERSION);
  auto od = of.initControl().initDecide();
  od.setVerdict("maybe");
  od.initEdited().setNull();
  CHECK(decode_error(to_parts(odd)) == "a decision whose verdict is `maybe` (approve, reject or edit)");
  // A deploy whose parts are of another epoch than the one it restores is refused.
  d.restore[0].epoch = 11;
  auto bad = decode(encode(control_msg{9, d}));
  CHECK_FALSE(bad);
  CHECK(bad.error.find("restoring epoch 12 with a part of epoch 11") != std::string::npos);
}

TEST_CASE("values the wire cannot carry are refused when encoding" * doctest::timeout(10)) {
  value deep = 1;
  for (int i = 0; i < max_depth + 2; ++i) deep = value{value_list{deep}};
  CHECK_THROWS_AS(encode(batch_of({deep})), encode_error);
}

TEST_CASE("truncated, empty and misaligned headers give errors" * doctest::timeout(10)) {
  CHECK(decode_error({}) == "empty message");
  multipart one;
  one.emplace_back();
  CHECK(decode_error(std::move(one)) == "empty header");
  auto good = encode(batch_of(every_kind_of_value()), {1u << 30});
  REQUIRE(good.size() == 1);
  const auto* bytes = static_cast<const char*>(good[0].data());
  for (std::size_t n = 1; n < good[0].size(); n += (n < 64 ? 1 : 37)) {
    multipart cut;
    cut.emplace_back(bytes, n);
    CAPTURE(n);
    CHECK_FALSE(decode(std::move(cut)));
  }
  // A header at an odd address still decodes (it is copied to an aligned buffer).
  std::vector<char> odd(good[0].size() + 1);
  std::memcpy(odd.data() + 1, bytes, good[0].size());
  multipart shifted;
  shifted.emplace_back(odd.data() + 1, good[0].size());
  CHECK(decode(std::move(shifted)));
  // Trailing words after the message.
  std::vector<char> longer(bytes, bytes + good[0].size());
  longer.resize(longer.size() + 8);
  multipart trailing;
  trailing.emplace_back(longer.data(), longer.size());
  CHECK(decode_error(std::move(trailing)).find("after the end") != std::string::npos);
}

TEST_CASE("random and mutated bytes never crash the decoder" * doctest::timeout(60)) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint64_t> words(1 + rng() % 64);
    for (auto& w : words) w = rng();
    if (i % 2) words[0] = 0;  // one segment, so more of them reach the pointers
    multipart parts;
    parts.emplace_back(words.data(), words.size() * 8);
    (void)decode(std::move(parts));
  }
  // Every word of a valid message, replaced by patterns that make pointers lie about counts and offsets.
  auto good = encode(batch_of(every_kind_of_value()), {64});
  std::vector<std::uint64_t> base(good[0].size() / 8);
  std::memcpy(base.data(), good[0].data(), good[0].size());
  const std::uint64_t patterns[] = {~0ull, 0xFFFFFFFFull << 32 | 1, 0x7FFFFFFFull << 35 | 5, 0xFFFFFFF8ull << 32 | 1,
                                    0x0000000100000000ull, 0xFFFFFFFC00000001ull, 2, 3};
  int errors = 0;
  for (std::size_t w = 0; w < base.size(); ++w) {
    for (auto p : patterns) {
      auto words = base;
      words[w] = p;
      multipart parts;
      parts.emplace_back(words.data(), words.size() * 8);
      for (std::size_t k = 1; k < good.size(); ++k) parts.emplace_back(good[k].data(), good[k].size());
      if (!decode(std::move(parts))) ++errors;
    }
  }
  CHECK(errors > 0);
}

TEST_CASE("a segment table claiming huge segments or counts gives an error" * doctest::timeout(10)) {
  std::uint32_t table[4] = {0, 0xFFFFFFFF, 0, 0};  // one segment of 2^32-1 words
  multipart a;
  a.emplace_back(table, sizeof table);
  CHECK_FALSE(decode(std::move(a)));
  std::uint32_t many[2] = {0xFFFFFFF0, 1};  // 2^32-15 segments
  multipart b;
  b.emplace_back(many, sizeof many);
  CHECK_FALSE(decode(std::move(b)));
}

TEST_CASE("wrong union tags, dtypes and versions give errors naming them" * doctest::timeout(10)) {
  auto value_with_tag = [](std::uint16_t tag) {
    capnp::MallocMessageBuilder b;
    auto f = b.initRoot<s::Frame>();
    f.setVersion(s::WIRE_VERSION);
    auto v = f.initData().initBatch().initValues(1)[0];
    v.setInt(1);
    poke_u16(v, 0, tag);
    return decode_error(to_parts(b));
  };
  CHECK(value_with_tag(9) == "unknown value tag 9");
  CHECK(value_with_tag(0xFFFF) == "unknown value tag 65535");

  capnp::MallocMessageBuilder env;
  auto f = env.initRoot<s::Frame>();
  f.setVersion(s::WIRE_VERSION);
  f.initData().initEos();
  poke_u16(f.getData(), 12, 7);  // 0..6: batch, credit, eos, call, reply, cancelCall, barrier
  CHECK(decode_error(to_parts(env)) == "unknown envelope body tag 7");

  capnp::MallocMessageBuilder ctl;
  auto fc = ctl.initRoot<s::Frame>();
  fc.setVersion(s::WIRE_VERSION);
  fc.initControl().setStart();
  poke_u16(fc.getControl(), 4, 19);  // the union's tags count its members from 0: asked is the last, 18
  CHECK(decode_error(to_parts(ctl)) == "unknown control tag 19");

  capnp::MallocMessageBuilder fr;
  auto ff = fr.initRoot<s::Frame>();
  ff.setVersion(s::WIRE_VERSION);
  ff.initControl().setStart();
  poke_u16(ff, 1, 2);
  CHECK(decode_error(to_parts(fr)) == "unknown frame tag 2");

  capnp::MallocMessageBuilder tags;  // one lineage tag per value, or none
  auto tf = tags.initRoot<s::Frame>();
  tf.setVersion(s::WIRE_VERSION);
  auto tb = tf.initData().initBatch();
  tb.initValues(2);
  tb.initTags(1);
  CHECK(decode_error(to_parts(tags)) == "a batch of 2 values with 1 lineage tags");

  capnp::MallocMessageBuilder ver;
  ver.initRoot<s::Frame>().setVersion(6);
  CHECK(decode_error(to_parts(ver)) == "wire version 6, this build speaks version 5");
  capnp::MallocMessageBuilder old;  // loom 0.1's frames
  old.initRoot<s::Frame>().setVersion(1);
  CHECK(decode_error(to_parts(old)) == "wire version 1, this build speaks version 5");
  capnp::MallocMessageBuilder before_runs;  // without tag runs: a tagged batch would lose its tags
  before_runs.initRoot<s::Frame>().setVersion(2);
  CHECK(decode_error(to_parts(before_runs)) == "wire version 2, this build speaks version 5");
  capnp::MallocMessageBuilder before_barriers;  // without snapshot barriers: a barrier would be an unknown tag
  before_barriers.initRoot<s::Frame>().setVersion(3);
  CHECK(decode_error(to_parts(before_barriers)) == "wire version 3, this build speaks version 5");
  capnp::MallocMessageBuilder before_after;  // without Credit.after: a movable instance's credit could pass its data
  before_after.initRoot<s::Frame>().setVersion(4);
  CHECK(decode_error(to_parts(before_after)) == "wire version 4, this build speaks version 5");

  capnp::MallocMessageBuilder dt;
  auto t = value_in_batch(dt).initTensor();
  t.initShape(1).set(0, 1);
  t.initData().setInline(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("abcd"), 4));
  poke_u16(t, 0, 8);
  CHECK(decode_error(to_parts(dt)) == "unknown tensor dtype 8");

  capnp::MallocMessageBuilder pl;
  auto p = value_in_batch(pl).initBytes();
  p.setFrame(1);
  poke_u16(p, 0, 3);
  CHECK(decode_error(to_parts(pl)) == "unknown payload tag 3");
}

TEST_CASE("tensor shapes that lie about their data give errors" * doctest::timeout(10)) {
  auto tensor_error = [](std::vector<std::int64_t> shape, std::size_t data_bytes, bool as_part = false) {
    capnp::MallocMessageBuilder b;
    auto t = value_in_batch(b).initTensor();
    t.setDtype(s::DType::F32);
    auto sh = t.initShape(static_cast<unsigned>(shape.size()));
    for (unsigned i = 0; i < shape.size(); ++i) sh.set(i, shape[i]);
    std::vector<std::byte> data(data_bytes);
    if (as_part) {
      t.initData().setFrame(1);
      return decode_error(to_parts(b, {data}));
    }
    t.initData().setInline(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
    return decode_error(to_parts(b));
  };
  CHECK(tensor_error({2, 3}, 20) == "tensor f32 of shape [2,3] needs 24 bytes of data, got 20");
  CHECK(tensor_error({2, 3}, 28) == "tensor f32 of shape [2,3] needs 24 bytes of data, got 28");
  CHECK(tensor_error({1024, 1024}, 1000, true) == "tensor f32 of shape [1024,1024] needs 4194304 bytes of data, got 1000");
  CHECK(tensor_error({2, -3}, 24) == "tensor dimension -3 is negative");
  CHECK(tensor_error({std::int64_t{1} << 62, 8}, 0) == "tensor shape overflows 64 bits");
  CHECK(tensor_error({std::int64_t{1} << 62, 1}, 0) == "tensor shape overflows 64 bits");  // * 4 bytes
  CHECK(tensor_error(std::vector<std::int64_t>(65, 1), 4) == "tensor of 65 dimensions (at most 64)");
}

TEST_CASE("payload part references are checked" * doctest::timeout(10)) {
  std::vector<std::byte> data(10);
  {
    capnp::MallocMessageBuilder b;
    value_in_batch(b).initBytes().setFrame(2);
    CHECK(decode_error(to_parts(b, {data})) == "payload part 2 does not exist (the message has 1 payload parts)");
  }
  {
    capnp::MallocMessageBuilder b;
    value_in_batch(b).initBytes().setFrame(0);
    CHECK(decode_error(to_parts(b, {data})) == "payload part 0 does not exist (the message has 1 payload parts)");
  }
  {
    capnp::MallocMessageBuilder b;
    auto f = b.initRoot<s::Frame>();
    f.setVersion(s::WIRE_VERSION);
    auto vs = f.initData().initBatch().initValues(2);
    vs[0].initBytes().setFrame(1);
    vs[1].initBytes().setFrame(1);
    CHECK(decode_error(to_parts(b, {data})) == "payload part 1 is referred to twice");
  }
  {
    capnp::MallocMessageBuilder b;
    value_in_batch(b).setNull();
    CHECK(decode_error(to_parts(b, {data})) == "payload part 1 of 1 is not referred to by the header");
  }
  {
    capnp::MallocMessageBuilder b;
    auto f = b.initRoot<s::Frame>();
    f.setVersion(s::WIRE_VERSION);
    f.initControl().setStart();
    CHECK(decode_error(to_parts(b, {data})) == "control message with 1 payload parts (expected none)");
  }
}

TEST_CASE("nesting deeper than the limit gives an error" * doctest::timeout(10)) {
  capnp::MallocMessageBuilder b;
  auto v = value_in_batch(b);
  for (int i = 0; i < 200; ++i) v = v.initList(1)[0];
  v.setInt(1);
  auto err = decode_error(to_parts(b));
  CHECK(err.find("nest") != std::string::npos);
}

TEST_CASE("a plan placing an instance on a host it does not list gives an error" * doctest::timeout(10)) {
  auto parts = encode(control_msg{1, control::deploy{"", {{{"h1", "tcp://a:1"}}, {0, 1}}}});
  CHECK(decode_error(std::move(parts)) == "plan places instance 1 on host 1, but the plan has 1 hosts");
}

TEST_CASE("a plan with a device below -1, or a device per instance that does not add up, gives an error" *
          doctest::timeout(10)) {
  CHECK(decode_error(encode(control_msg{1, control::deploy{"", {{{"h1", "tcp://a:1"}}, {0, 0}, {0, -7}}}})) ==
        "plan places instance 1 on device -7");
  CHECK(decode_error(encode(control_msg{1, control::deploy{"", {{{"h1", "tcp://a:1"}}, {0, 0}, {0}}}})) ==
        "plan has 1 devices for 2 instances");
}
