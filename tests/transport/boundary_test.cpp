// tests/transport/boundary_test.cpp: the receive boundary. Link ids, credit counts, batch sizes, call and
// reply targets and the sender's curve key are checked against the run's rules before any actor sees a
// message; the authenticated key reaches the receiver; a part over the size limit never arrives; a run's
// sequence numbers are forgotten at its end; allow() admits new client keys.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "loom/runtime/transport/stand_in.hpp"
#include "tests/transport/collector.hpp"

using namespace loom;
using namespace loom::transport;
using namespace std::chrono_literals;

namespace {

// Counts what reaches it: the boundary must not let a refused message through.
caf::behavior sink(caf::event_based_actor* self, std::shared_ptr<std::atomic<int>> seen) {
  return {
      [=](local::batch_msg&) { ++*seen; },
      [=](local::credit_msg&) { ++*seen; },
      [=](local::eos_msg&) { ++*seen; },
      [=](local::call_msg&) { ++*seen; },
      [=](local::reply_msg&) { ++*seen; },
      [=](local::cancel_call_msg&) { ++*seen; },
  };
}

}  // namespace

TEST_CASE("the receiver refuses link ids, credits, batches, calls and keys the run does not have" *
          doctest::timeout(30)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  auto seen = std::make_shared<std::atomic<int>>(0);
  // instance 0 (remote, host a) -> instance 1 (local) on link 0 of capacity 4; 1 calls tool 2 (remote).
  std::vector<caf::actor> local(3), stand_ins(3);
  local[1] = sys.spawn(sink, seen);
  stand_ins[0] = sys.spawn(sink, seen);
  stand_ins[2] = sys.spawn(sink, seen);
  auto rules = std::make_shared<run_rules>();
  rules->streams[run_rules::key(0, 1)].in_links[0] = 4;
  rules->streams[run_rules::key(1, 0)].out_links[0] = 4;
  rules->streams[run_rules::key(2, 1)].replies = true;
  rules->streams[run_rules::key(1, 2)].calls = true;
  rules->instance_key = {"KEY-A", "KEY-B", "KEY-A"};
  rules->instance_host = {"a", "b", "a"};
  receiver r(9, local, stand_ins, rules);
  auto env = [](std::uint32_t from, body b) { return envelope{9, from, 1, 0, std::move(b)}; };
  std::vector<value> four(4, value{1}), five(5, value{1});

  CHECK_FALSE(r.deliver(env(0, local::batch_msg{0, four}), "KEY-A"));
  CHECK_FALSE(r.deliver(env(0, local::eos_msg{0}), "KEY-A"));
  CHECK_FALSE(r.deliver(env(2, local::reply_msg{1, true, value{}, ""}), "KEY-A"));

  CHECK(r.deliver(env(0, local::batch_msg{1, four}), "KEY-A").value() ==
        "run 9 stream 0->1: link 1 is not an input link of instance 1 from instance 0");
  CHECK(r.deliver(env(0, local::batch_msg{0, five}), "KEY-A").value() ==
        "run 9 stream 0->1: a batch of 5 values on link 0, whose capacity is 4");
  CHECK(r.deliver(env(0, local::eos_msg{7}), "KEY-A").value() ==
        "run 9 stream 0->1: link 7 is not an input link of instance 1 from instance 0");
  CHECK(r.deliver(env(0, local::credit_msg{0, 1}), "KEY-A").value() ==
        "run 9 stream 0->1: credit for link 0, which is not an output link of instance 1 to instance 0");
  CHECK(r.deliver(env(0, local::call_msg{1, value{}}), "KEY-A").value() ==
        "run 9 stream 0->1: a call to instance 1, which is not a tool of instance 0");
  CHECK(r.deliver(env(0, local::cancel_call_msg{1}), "KEY-A").value() ==
        "run 9 stream 0->1: a call cancel to instance 1, which is not a tool of instance 0");
  CHECK(r.deliver(env(2, local::batch_msg{0, four}), "KEY-A").value() ==
        "run 9 stream 2->1: link 0 is not an input link of instance 1 from instance 2");
  CHECK(r.deliver(env(0, local::reply_msg{1, true, value{}, ""}), "KEY-A").value() ==
        "run 9 stream 0->1: a reply from instance 0, which is not a tool that instance 1 calls");
  // host c's key (or none) may not speak for an instance on host a
  CHECK(r.deliver(env(0, local::batch_msg{0, four}), "KEY-C").value() ==
        "run 9 stream 0->1: claims to come from host `a`, but was sent with curve key KEY-C, not `a`'s key KEY-A");
  CHECK(r.deliver(env(0, local::eos_msg{0}), "").value().find("(none)") != std::string::npos);

  // credits into a local producer: instance 1 -> 0 runs the other way; from 0's point of view as receiver
  std::vector<caf::actor> local2(2), stand2(2);
  local2[0] = sys.spawn(sink, seen);
  stand2[1] = sys.spawn(sink, seen);
  receiver r2(9, local2, stand2, rules);
  auto back = [](local::credit_msg c) { return envelope{9, 1, 0, 0, c}; };
  CHECK_FALSE(r2.deliver(back({0, 4}), "KEY-B"));
  CHECK(r2.deliver(back({0, 5}), "KEY-B").value() == "run 9 stream 1->0: 5 credits on link 0, whose capacity is 4");
  CHECK(r2.deliver(back({0, 0}), "KEY-B").value() == "run 9 stream 1->0: 0 credits on link 0, whose capacity is 4");
  CHECK(r2.deliver(back({3, 1}), "KEY-B").value() ==
        "run 9 stream 1->0: credit for link 3, which is not an output link of instance 0 to instance 1");

  // a call's cancel goes from the caller (1) to its tool (2) only, on the tool's host
  std::vector<caf::actor> local3(3), stand3(3);
  local3[2] = sys.spawn(sink, seen);
  stand3[1] = sys.spawn(sink, seen);
  receiver r3(9, local3, stand3, rules);
  CHECK_FALSE(r3.deliver(envelope{9, 1, 2, 0, local::cancel_call_msg{5}}, "KEY-B"));

  // only the five accepted messages reached an actor
  auto until = std::chrono::steady_clock::now() + 5s;
  while (seen->load() < 5 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(50ms);
  CHECK(seen->load() == 5);
  for (auto& a : {local[1], stand_ins[0], stand_ins[2], local2[0], stand2[1], local3[2], stand3[1]})
    caf::anon_send_exit(a, caf::exit_reason::kill);
}

TEST_CASE("a curve server learns each sender's authenticated key, and allow() admits new keys" *
          doctest::timeout(30)) {
  auto server_keys = generate_keypair(), first = generate_keypair(), later = generate_keypair();
  test::collector at_server, at_first, at_later;
  endpoint server(test::config("server", server_keys, {first.public_key}), at_server.callbacks());
  auto addr = server.bind("tcp://127.0.0.1:0");
  endpoint a(test::config("claims-to-be-b", first), at_first.callbacks());
  a.send(a.connect(addr, test::connecting(server_keys.public_key)), control_msg{1, control::start{}});
  auto in = at_server.next_message();
  REQUIRE(in);
  CHECK(in->peer == "claims-to-be-b");          // a name is only claimed
  CHECK(in->peer_key == first.public_key);      // the key is proven
  endpoint b(test::config("b", later), at_later.callbacks());
  CHECK_THROWS(b.connect(addr, test::connecting(server_keys.public_key, 2s)));  // not allowed yet
  server.allow({later.public_key});
  endpoint b2(test::config("b2", later), at_later.callbacks());
  b2.send(b2.connect(addr, test::connecting(server_keys.public_key)), control_msg{1, control::start{}});
  bool got = false;
  for (int i = 0; i < 3 && !got; ++i) {
    auto m = at_server.next_message(5s);
    got = m && m->peer == "b2" && m->peer_key == later.public_key;
  }
  CHECK(got);
  CHECK_THROWS_AS(server.allow({"not a key"}), transport_error);
}

TEST_CASE("a part over max_part_bytes never reaches the receiver, and a sender refuses to send one" *
          doctest::timeout(30)) {
  CHECK(endpoint_config{}.max_part_bytes == std::int64_t{64} << 20);
  test::collector at_a, at_b;
  auto cb = test::config("b");
  cb.max_part_bytes = 1 << 16;
  cb.gap_timeout = 300ms;
  endpoint b(cb, at_b.callbacks());
  auto addr = b.bind("tcp://127.0.0.1:0");
  endpoint a(test::config("a"), at_a.callbacks());  // a larger limit than b's: it sends, b refuses to read
  auto to_b = a.connect(addr);
  auto big = value{tensor::zeros(dtype::u8, {1 << 17})};
  a.send(to_b, envelope{1, 0, 1, 0, local::batch_msg{0, {big}}});
  a.send(to_b, envelope{1, 0, 1, 1, local::batch_msg{0, {value{1}}}});
  CHECK_FALSE(at_b.next_message(1s));  // not the big one, and nothing behind it
  // b closes the connection before reading the part: a is told, every time.
  auto q = at_a.next_problem(10s);
  REQUIRE(q);
  CHECK(q->what == problem::kind::disconnected);
  // Whether the small message behind it ever reaches b depends on timing (a resends both, in order, after
  // each reconnect); when it does, b reports the gap before it, never delivers it out of order.
  if (auto p = at_b.next_problem(2s)) {
    CHECK(p->what == problem::kind::sequence);
    CHECK(p->expected == 0);
  }
  CHECK_FALSE(at_b.next_message(0ms));
  // A sender with the cluster's limit never puts such a part on the wire.
  endpoint c(cb, at_a.callbacks());
  CHECK_THROWS_WITH_AS(c.send(c.connect(addr), envelope{1, 2, 1, 0, local::batch_msg{0, {big}}}),
                       "a message part of 131072 bytes exceeds max_message_size (65536 bytes)", encode_error);
}

TEST_CASE("forget_run drops a run's sequence numbers at its end" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint b(test::config("b"), at_b.callbacks());
  auto addr = b.bind("tcp://127.0.0.1:0");
  endpoint a(test::config("a"), at_a.callbacks());
  auto to_b = a.connect(addr);
  a.send(to_b, envelope{5, 0, 1, 0, local::eos_msg{0}});
  a.send(to_b, envelope{5, 0, 1, 1, local::eos_msg{0}});
  REQUIRE(at_b.next_message());
  REQUIRE(at_b.next_message());
  b.forget_run(5);
  a.send(to_b, envelope{5, 0, 1, 0, local::eos_msg{0}});  // numbered from 0 again: not a repeat any more
  CHECK(at_b.next_message());
  CHECK_FALSE(at_b.next_problem(200ms));
}

TEST_CASE("after an instance moves, the receiver takes its new host's key and drops what its old one sends" *
          doctest::timeout(30)) {
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  auto seen = std::make_shared<std::atomic<int>>(0);
  // instance 0 (host a) -> instance 1 (here) on link 0; instance 0 moves to host c (its first move).
  std::vector<caf::actor> local(2), stand_ins(2);
  local[1] = sys.spawn(sink, seen);
  stand_ins[0] = sys.spawn(sink, seen);
  auto rules = std::make_shared<run_rules>();
  rules->streams[run_rules::key(0, 1)].in_links[0] = 4;
  rules->instance_key = {"KEY-A", "KEY-B"};
  rules->instance_host = {"a", "b"};
  receiver before(9, local, stand_ins, rules);
  envelope old{9, 0, 1, 0, local::batch_msg{0, {value{1}}}};
  CHECK_FALSE(before.stale(old));
  auto after = before.moved(0, 1, "c", "KEY-C", {});
  CHECK(after.stale(old));  // sent by the instance on its lost host (epoch 0)
  envelope fresh = old;
  fresh.epoch = 1;
  CHECK_FALSE(after.stale(fresh));
  CHECK(after.deliver(envelope(fresh), "KEY-A").value().find("claims to come from host `c`") != std::string::npos);
  CHECK_FALSE(after.deliver(envelope(fresh), "KEY-C"));
  // The epoch travels on the wire.
  auto got = decode(encode(fresh));
  REQUIRE(got);
  CHECK(std::get<envelope>(*got.msg).epoch == 1);
  CHECK(std::get<envelope>(*decode(encode(old)).msg).epoch == 0);
}
