// tests/transport/stand_in_test.cpp: a producer and a consumer on two "hosts" (two endpoints over loopback
// TCP, one actor system) talk through stand-ins exactly as they would in one process: batches, credits,
// end-of-stream, a call and its reply, with the exact values, a 1 MiB tensor received without a copy, and
// every message arriving as if sent by the stand-in of its sender; batches that queue up behind each other
// in a stand-in's mailbox go out joined, in order (in a movable instance's egress too, with their lineage
// tags, a credit between them keeping its place); a batch of large values goes in envelopes of about 1 MiB.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <mutex>

#include "loom/runtime/transport/stand_in.hpp"
#include "tests/transport/collector.hpp"

using namespace loom;
using namespace loom::transport;
using namespace std::chrono_literals;

namespace {

caf::behavior producer(caf::event_based_actor* self, caf::actor test) {
  return {
      [=](local::start_atom, caf::actor target, local::batch_msg& b) {
        auto link = b.link;
        self->send(target, std::move(b));
        self->send(target, local::call_msg{42, value{value_map{{"q", "6*7"}}}});
        self->send(target, local::eos_msg{link});
      },
      [=](local::credit_msg& c) { self->send(test, c, caf::actor_cast<caf::actor_addr>(self->current_sender())); },
      [=](local::reply_msg& r) { self->send(test, r, caf::actor_cast<caf::actor_addr>(self->current_sender())); },
  };
}

caf::behavior consumer(caf::event_based_actor* self, caf::actor test) {
  return {
      [=](local::batch_msg& b) {
        auto from = self->current_sender();
        self->send(caf::actor_cast<caf::actor>(from), local::credit_msg{7, static_cast<std::uint32_t>(b.values.size())});
        self->send(test, b, caf::actor_cast<caf::actor_addr>(from));
      },
      [=](local::call_msg& c) {
        self->send(caf::actor_cast<caf::actor>(self->current_sender()), local::reply_msg{c.id, true, value{42}, ""});
        self->send(test, c, caf::actor_cast<caf::actor_addr>(self->current_sender()));
      },
      [=](local::eos_msg& e) { self->send(test, e, caf::actor_cast<caf::actor_addr>(self->current_sender())); },
  };
}

// Sends a burst in one handler: 25 batches on link 3, one on link 4, 25 more on link 3, the end of link 3.
// (`first` is the first number sent. A function spawned with no arguments makes CAF 0.17 dereference an
// empty argument tuple: UBSan's "reference binding to null pointer".)
caf::behavior burst(caf::event_based_actor* self, std::int64_t first) {
  return {
      [=](local::start_atom, caf::actor target) {
        std::int64_t next = first;
        auto some = [&](int n) {
          for (int b = 0; b < n; ++b) self->send(target, local::batch_msg{3, {value{next++}, value{next++}}});
        };
        some(25);
        self->send(target, local::batch_msg{4, {value{"other link"}}});
        some(25);
        self->send(target, local::eos_msg{3});
      },
  };
}

// A movable instance's burst to its egress: 25 tagged batches on link 3 to instance 1, a credit, 25 more,
// the end of link 3.
caf::behavior tagged_burst(caf::event_based_actor* self, std::int64_t first) {
  return {
      [=](local::start_atom, caf::actor target) {
        std::int64_t next = first;
        auto some = [&](int n) {
          for (int b = 0; b < n; ++b) {
            local::batch_msg m{3, {value{next}, value{next + 1}}, local::no_index, {}, 1};
            m.tags = {{0, 0, static_cast<std::uint64_t>(next)}, {0, 0, static_cast<std::uint64_t>(next + 1)}};
            next += 2;
            self->send(target, std::move(m));
          }
        };
        some(25);
        self->send(target, local::credit_msg{9, 5, 1});
        some(25);
        self->send(target, local::eos_msg{3, 1});
      },
  };
}

// One host: an endpoint whose messages go to a receiver set once the actors exist.
struct host {
  test::collector problems;
  std::mutex mu;
  std::shared_ptr<const receiver> recv;
  std::vector<std::string> undeliverable;
  endpoint ep;

  explicit host(std::string name)
      : ep(test::config(std::move(name)), {[this](incoming&& in) { on_message(std::move(in)); },
                                       problems.callbacks().on_problem}) {}

  void on_message(incoming&& in) {
    std::lock_guard lock(mu);
    if (auto* e = std::get_if<envelope>(&in.msg); e && recv) {
      if (auto err = recv->deliver(std::move(*e))) undeliverable.push_back(*err);
    }
  }
};

}  // namespace

TEST_CASE("a producer and a consumer on two hosts talk through stand-ins as if local" * doctest::timeout(60)) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system system(cfg);
  caf::scoped_actor test(system);
  constexpr std::uint64_t run = 5;

  host h1("h1"), h2("h2");  // instance 0 (producer) lives on h1, instance 1 (consumer) on h2
  auto addr1 = h1.ep.bind("tcp://127.0.0.1:0");
  auto addr2 = h2.ep.bind("tcp://127.0.0.1:0");
  auto h1_to_h2 = h1.ep.connect(addr2);
  auto h2_to_h1 = h2.ep.connect(addr1);

  auto p = system.spawn(producer, caf::actor{test});
  auto c = system.spawn(consumer, caf::actor{test});
  std::vector<std::string> errors;
  std::mutex errors_mu;
  auto on_error = [&](const std::string& e) {
    std::lock_guard lock(errors_mu);
    errors.push_back(e);
  };
  auto senders1 = std::make_shared<const sender_table>(sender_table{{p.id(), 0}});
  auto senders2 = std::make_shared<const sender_table>(sender_table{{c.id(), 1}});
  auto s1_on_h1 = system.spawn(stand_in, stand_in_config{run, 1, &h1.ep, h1_to_h2, senders1, on_error});
  auto s0_on_h2 = system.spawn(stand_in, stand_in_config{run, 0, &h2.ep, h2_to_h1, senders2, on_error});
  {
    std::lock_guard l1(h1.mu);
    h1.recv = std::make_shared<receiver>(run, std::vector<caf::actor>{p}, std::vector<caf::actor>{nullptr, s1_on_h1});
  }
  {
    std::lock_guard l2(h2.mu);
    h2.recv = std::make_shared<receiver>(run, std::vector<caf::actor>{nullptr, c}, std::vector<caf::actor>{s0_on_h2});
  }

  auto big = tensor::zeros(dtype::f32, {512, 512});  // 1 MiB
  std::vector<value> values{value{}, value{true}, value{-3}, value{2.5}, value{"text"}, value{bytes(10, std::byte{7})},
                            value{value_list{1, 2}}, value{value_map{{"k", "v"}}}, value{big}};
  test->send(p, local::start_atom::value, s1_on_h1, local::batch_msg{3, values});

  bool got_batch = false, got_call = false, got_eos = false, got_credit = false, got_reply = false;
  for (int i = 0; i < 5; ++i) {
    test->receive(
        [&](local::batch_msg& b, caf::actor_addr from) {
          got_batch = true;
          CHECK(from == s0_on_h2.address());  // as if sent by the producer's stand-in on h2
          CHECK(b.link == 3);
          REQUIRE(b.values.size() == values.size());
          for (std::size_t k = 0; k < values.size(); ++k) CHECK(b.values[k] == values[k]);
          const auto& t = b.values.back().as_tensor();
          auto* zs = dynamic_cast<const zmq_storage*>(t.data().get());
          REQUIRE(zs);  // the tensor's storage is the received zmq message...
          const auto* p0 = reinterpret_cast<const std::byte*>(t.host_data<float>());
          CHECK(p0 >= zs->data());
          CHECK(p0 + t.nbytes() <= zs->data() + zs->size());  // ...and its data lies inside that buffer
          CHECK(p0 != big.data()->data());                    // which is not the sender's memory
        },
        [&](local::call_msg& call, caf::actor_addr from) {
          got_call = true;
          CHECK(from == s0_on_h2.address());
          CHECK(call.id == 42);
          CHECK(call.request == value{value_map{{"q", "6*7"}}});
        },
        [&](local::eos_msg& e, caf::actor_addr from) {
          got_eos = true;
          CHECK(from == s0_on_h2.address());
          CHECK(e.link == 3);
        },
        [&](local::credit_msg& cr, caf::actor_addr from) {
          got_credit = true;
          CHECK(from == s1_on_h1.address());  // as if sent by the consumer's stand-in on h1
          CHECK(cr.link == 7);
          CHECK(cr.credits == values.size());
        },
        [&](local::reply_msg& r, caf::actor_addr from) {
          got_reply = true;
          CHECK(from == s1_on_h1.address());
          CHECK(r.id == 42);
          CHECK(r.ok);
          CHECK(r.reply == value{42});
        },
        caf::after(std::chrono::seconds(20)) >> [&] { FAIL("timed out waiting for messages"); });
  }
  CHECK((got_batch && got_call && got_eos && got_credit && got_reply));

  // A message from an actor that is no node instance is reported, not sent.
  test->send(s1_on_h1, local::eos_msg{1});
  test->send(s1_on_h1, local::credit_msg{0, 1});  // processed after the eos, so the error is there by then
  test->request(s1_on_h1, caf::infinite, local::eos_msg{2}).receive([](caf::message) {}, [](caf::error&) {});
  {
    std::lock_guard lock(errors_mu);
    REQUIRE(errors.size() >= 1);
    CHECK(errors[0].find("that is no local node instance: not sent") != std::string::npos);
  }
  CHECK_FALSE(h1.problems.next_problem(50ms));
  CHECK_FALSE(h2.problems.next_problem(50ms));
  CHECK(h1.undeliverable.empty());
  CHECK(h2.undeliverable.empty());
  for (auto& a : {p, c, s1_on_h1, s0_on_h2}) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("batches queued behind each other in a stand-in's mailbox go out as one envelope, in order" *
          doctest::timeout(60)) {
  // One scheduler thread: while the burst's handler runs, the stand-in cannot, so all 52 messages are in
  // its mailbox when it starts.
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system system(cfg);
  caf::scoped_actor test(system);
  auto got = std::make_shared<test::collector>();
  auto h2 = std::make_unique<endpoint>(test::config("h2"), got->callbacks());
  auto h1 = std::make_unique<endpoint>(test::config("h1"), endpoint_callbacks{});  // problems: logged
  auto to_h2 = h1->connect(h2->bind("tcp://127.0.0.1:0"));
  auto p = system.spawn(burst, std::int64_t{0});
  auto senders = std::make_shared<const sender_table>(sender_table{{p.id(), 0}});
  std::vector<std::string> errors;
  auto s = system.spawn(stand_in, stand_in_config{5, 1, h1.get(), to_h2, senders,
                                                  [&](const std::string& e) { errors.push_back(e); }});
  test->send(p, local::start_atom::value, s);

  std::vector<envelope> es;
  for (int i = 0; i < 4; ++i) {
    auto in = got->next_message(std::chrono::seconds(20));
    REQUIRE(in);
    es.push_back(std::get<envelope>(std::move(in->msg)));
  }
  for (std::uint64_t i = 0; i < es.size(); ++i) {
    CHECK(es[i].seq == i);  // one stream, numbered without a gap
    CHECK(es[i].stream() == stream_key{5, 0, 1});
  }
  auto& first = std::get<local::batch_msg>(es[0].body);
  CHECK(first.link == 3);
  REQUIRE(first.values.size() == 50);  // 25 batches of 2, joined
  for (std::int64_t v = 0; v < 50; ++v) CHECK(first.values[static_cast<std::size_t>(v)] == value{v});
  auto& other = std::get<local::batch_msg>(es[1].body);
  CHECK(other.link == 4);
  CHECK(other.values == std::vector<value>{value{"other link"}});
  auto& second = std::get<local::batch_msg>(es[2].body);
  REQUIRE(second.values.size() == 50);
  for (std::int64_t v = 0; v < 50; ++v) CHECK(second.values[static_cast<std::size_t>(v)] == value{50 + v});
  CHECK(std::get<local::eos_msg>(es[3].body).link == 3);  // after every value of its link
  CHECK_FALSE(got->next_message(std::chrono::milliseconds(50)));
  CHECK(errors.empty());
  for (auto& a : {p, s}) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  h1.reset();  // the connecting side first: the other one's close is then no problem for it
  h2.reset();
}

TEST_CASE("a movable instance's egress joins the batches queued in its mailbox, tags and all; a credit keeps its place" *
          doctest::timeout(60)) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);  // all 52 messages are in the egress's mailbox when it starts
  caf::actor_system system(cfg);
  caf::scoped_actor test(system);
  auto got = std::make_shared<test::collector>();
  auto h2 = std::make_unique<endpoint>(test::config("h2"), got->callbacks());
  auto h1 = std::make_unique<endpoint>(test::config("h1"), endpoint_callbacks{});
  auto to_h2 = h1->connect(h2->bind("tcp://127.0.0.1:0"));
  std::vector<std::string> errors;
  egress_config ec{5, 0, h1.get(), {0, to_h2}, {0, 1}, [&](const std::string& e) { errors.push_back(e); }, 0};
  auto e = system.spawn(egress, ec);
  auto p = system.spawn(tagged_burst, std::int64_t{0});
  test->send(p, local::start_atom::value, e);

  std::vector<envelope> es;
  for (int i = 0; i < 4; ++i) {
    auto in = got->next_message(std::chrono::seconds(20));
    REQUIRE(in);
    es.push_back(std::get<envelope>(std::move(in->msg)));
  }
  for (std::uint64_t i = 0; i < es.size(); ++i) {
    CHECK(es[i].seq == i);
    CHECK(es[i].stream() == stream_key{5, 0, 1});
  }
  for (std::size_t k : {0, 2}) {
    auto& b = std::get<local::batch_msg>(es[k].body);
    CHECK(b.link == 3);
    REQUIRE(b.values.size() == 50);  // 25 batches of 2, joined
    REQUIRE(b.tags.size() == 50);
    CHECK(b.tags.runs().size() == 1);  // 25 runs of 2, joined into one
    auto tags = b.tags.expand();
    auto base = k == 0 ? 0 : 50;
    for (std::size_t v = 0; v < 50; ++v) {
      CHECK(b.values[v] == value{static_cast<std::int64_t>(base + v)});
      CHECK(tags[v].index == base + v);
    }
  }
  // The credit went after the first 50 values only once they were acknowledged (the fence), and before
  // the next 50.
  CHECK(std::get<local::credit_msg>(es[1].body).credits == 5);
  CHECK(std::get<local::eos_msg>(es[3].body).link == 3);
  CHECK_FALSE(got->next_message(std::chrono::milliseconds(50)));
  CHECK(errors.empty());
  for (auto& a : {p, e}) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  h1.reset();
  h2.reset();
}

TEST_CASE("a batch of large inline values is cut into envelopes of about 1 MiB, in order" * doctest::timeout(60)) {
  caf::actor_system_config cfg;
  caf::actor_system system(cfg);
  caf::scoped_actor self(system);
  auto got = std::make_shared<test::collector>();
  auto h2 = std::make_unique<endpoint>(test::config("h2"), got->callbacks());
  auto h1 = std::make_unique<endpoint>(test::config("h1"), endpoint_callbacks{});
  auto to_h2 = h1->connect(h2->bind("tcp://127.0.0.1:0"));
  auto senders = std::make_shared<const sender_table>(sender_table{{self->id(), 0}});
  auto s = system.spawn(stand_in, stand_in_config{5, 1, h1.get(), to_h2, senders, {}});
  std::vector<value> values;
  for (int i = 0; i < 3; ++i) values.emplace_back(std::string(600 * 1024, static_cast<char>('a' + i)));  // in the header
  values.emplace_back(bytes(2 << 20, std::byte{1}));  // a part of its own: counts nothing
  values.emplace_back(7);
  values.emplace_back(8);
  self->send(s, local::batch_msg{3, values});
  std::vector<std::size_t> sizes;
  std::vector<value> all;
  for (int i = 0; i < 3; ++i) {
    auto in = got->next_message(std::chrono::seconds(20));
    REQUIRE(in);
    auto e = std::get<envelope>(std::move(in->msg));
    CHECK(e.seq == static_cast<std::uint64_t>(i));
    auto& b = std::get<local::batch_msg>(e.body);
    CHECK(b.link == 3);
    sizes.push_back(b.values.size());
    all.insert(all.end(), b.values.begin(), b.values.end());
  }
  CHECK(sizes == std::vector<std::size_t>{1, 1, 4});  // 600 KiB + 600 KiB of header would pass 1 MiB
  CHECK(all == values);
  CHECK_FALSE(got->next_message(std::chrono::milliseconds(50)));
  caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  h1.reset();
  h2.reset();
}
