// tests/transport/endpoint_test.cpp: two endpoints over real loopback TCP: data and control both ways, order,
// sequence gaps and repeats reported, an unreachable peer named, an unknown name reported.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <zmq.hpp>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>


#include "loom/runtime/transport/endpoint.hpp"
#include "tests/transport/collector.hpp"
#include "tests/transport/proxy.hpp"

using namespace loom;
using namespace loom::transport;
using namespace std::chrono_literals;

namespace {

envelope numbered(std::uint64_t seq, std::int64_t x) {
  return envelope{1, 0, 1, seq, local::batch_msg{0, {value{x}}}};
}

std::int64_t first_int(const incoming& in) {
  return std::get<local::batch_msg>(std::get<envelope>(in.msg).body).values.at(0).as_int();
}

}  // namespace

TEST_CASE("two endpoints exchange data and control over loopback TCP, in order" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint a(test::config("a"), at_a.callbacks());
  endpoint b(test::config("b"), at_b.callbacks());
  auto addr_b = b.bind("tcp://127.0.0.1:0");
  CHECK(addr_b.starts_with("tcp://127.0.0.1:"));
  auto to_b = a.connect(addr_b);

  stream_numbering numbers;
  for (std::int64_t i = 0; i < 1000; ++i) a.send(to_b, numbered(numbers.next({1, 0, 1}), i));
  a.send(to_b, control_msg{1, control::hello{"a"}});
  for (std::int64_t i = 0; i < 1000; ++i) {
    auto in = at_b.next_message();
    REQUIRE(in);
    CHECK(in->peer == "a");  // the DEALER's routing id: the sender's endpoint name
    CHECK(first_int(*in) == i);
  }
  auto hello = at_b.next_message();
  REQUIRE(hello);
  CHECK(std::get<control::hello>(std::get<control_msg>(hello->msg).body).worker == "a");

  // b answers by name over the connection a opened.
  b.send_to_name("a", control_msg{1, control::start{}});
  auto back = at_a.next_message();
  REQUIRE(back);
  CHECK(back->peer == addr_b);
  CHECK(std::holds_alternative<control::start>(std::get<control_msg>(back->msg).body));
  CHECK_FALSE(at_a.next_problem(50ms));
  CHECK_FALSE(at_b.next_problem(50ms));
}

TEST_CASE("a gap not filled in time is reported as lost; repeats are dropped quietly" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint a(test::config("a"), at_a.callbacks());
  auto cb = test::config("b");
  cb.gap_timeout = 300ms;
  endpoint b(cb, at_b.callbacks());
  auto to_b = a.connect(b.bind("tcp://127.0.0.1:0"));
  a.send(to_b, numbered(0, 0));
  a.send(to_b, numbered(1, 1));
  a.send(to_b, numbered(1, 11));  // a repeat (as after a resend): dropped, not an error
  a.send(to_b, numbered(4, 4));   // 2 and 3 are lost and never resent
  a.send(to_b, numbered(5, 5));
  for (std::int64_t want : {0, 1}) {
    auto in = at_b.next_message();
    REQUIRE(in);
    CHECK(first_int(*in) == want);
  }
  CHECK_FALSE(at_b.next_message(100ms));  // nothing past the gap is delivered
  auto gap = at_b.next_problem(5s);
  REQUIRE(gap);
  CHECK(gap->what == problem::kind::sequence);
  REQUIRE(gap->stream);
  CHECK(*gap->stream == stream_key{1, 0, 1});
  CHECK(gap->expected == 2);
  CHECK(gap->actual == 5);
  CHECK(gap->text == "run 1 stream 0->1 from a: expected seq 2, got up to 5: 3 message(s) lost (not resent within 300 ms)");
  CHECK_FALSE(at_b.next_problem(100ms));  // once
  // Another stream is numbered on its own.
  a.send(to_b, envelope{1, 1, 0, 0, local::eos_msg{0}});
  CHECK(at_b.next_message());
}

TEST_CASE("TCP resets mid-stream lose nothing and repeat nothing: unacknowledged messages are resent" *
          doctest::timeout(60)) {
  test::collector at_a, at_b;
  endpoint b(test::config("b"), at_b.callbacks());
  auto bound = b.bind("tcp://127.0.0.1:0");
  test::reset_proxy proxy(std::stoi(bound.substr(bound.rfind(':') + 1)));
  endpoint a(test::config("a"), at_a.callbacks());
  auto to_b = a.connect(proxy.address());
  constexpr std::int64_t n = 20000;
  stream_numbering numbers;
  std::thread sender([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      a.send(to_b, envelope{1, 0, 1, numbers.next({1, 0, 1}), local::batch_msg{0, {value{i}, value{std::string(200, 'x')}}}});
      if (i % 500 == 0) std::this_thread::sleep_for(2ms);
      if (i == 3000 || i == 9000 || i == 15000) proxy.reset_all();
    }
  });
  std::int64_t next = 0;
  while (next < n) {
    auto in = at_b.next_message(10s);
    if (!in) break;
    REQUIRE(first_int(*in) == next);  // in order, no repeat, no gap
    ++next;
  }
  sender.join();
  CHECK(next == n);
  CHECK(proxy.resets() == 3);
  CHECK_FALSE(at_b.next_message(200ms));
  while (auto p = at_b.next_problem(10ms)) CHECK(p->what != problem::kind::sequence);
}

// Acks ride on the credits going the other way (the receiver's credit for stream 0->1 carries the ack of
// 0->1), both on the receiver's own connection to the sender (as between workers) and back by name on the
// connection the sender opened; a stream with no credit going back gets a separate Ack within 10-20 ms.
TEST_CASE("acks ride on credits going back; a separate Ack only when none goes" * doctest::timeout(60)) {
  for (bool by_name : {false, true}) {
    CAPTURE(by_name);
    test::collector at_a;
    endpoint a(test::config("a"), at_a.callbacks());
    auto addr_a = a.bind("tcp://127.0.0.1:0");
    endpoint* bp = nullptr;
    peer_id b_to_a = 0;
    stream_numbering back;
    std::atomic<int> batches{0};
    endpoint b(test::config("b"), {[&](incoming&& in) {
                                     auto& e = std::get<envelope>(in.msg);
                                     if (!std::holds_alternative<local::batch_msg>(e.body)) return;
                                     ++batches;
                                     envelope credit{1, 1, 0, back.next({1, 1, 0}), local::credit_msg{0, 1}};
                                     if (by_name) bp->send_to_name(in.peer, credit);
                                     else bp->send(b_to_a, credit);
                                   },
                                   [](const problem&) {}});
    bp = &b;
    auto to_b = a.connect(b.bind("tcp://127.0.0.1:0"));
    b_to_a = b.connect(addr_a);
    stream_numbering numbers;
    constexpr int n = 300;
    for (int i = 0; i < n; ++i) {
      a.send(to_b, numbered(numbers.next({1, 0, 1}), i));
      auto credit = at_a.next_message(10s);  // one at a time: each credit answers the batch before it
      REQUIRE(credit);
      auto& e = std::get<envelope>(credit->msg);
      CHECK(std::get<local::credit_msg>(e.body).credits == 1);
    }
    auto until = std::chrono::steady_clock::now() + 5s;
    while (a.stats().kept > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    CHECK(a.stats().kept == 0);  // every batch acknowledged ...
    auto s = b.stats();
    CHECK(s.acks_piggybacked >= n / 2);  // ... nearly all on the credits (a loaded machine may let a tick pass)
    CHECK(s.acks_separate < n / 2);
    if (!by_name) {  // b's credits on its own connection are acknowledged too (separately: a sends no credit)
      while (b.stats().kept > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
      CHECK(b.stats().kept == 0);
    }
    // end-of-stream gets no credit back: its ack comes alone
    auto separate = s.acks_separate;
    a.send(to_b, envelope{1, 0, 1, numbers.next({1, 0, 1}), local::eos_msg{0}});
    until = std::chrono::steady_clock::now() + 5s;
    while (b.stats().acks_separate == separate && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(1ms);
    CHECK(b.stats().acks_separate == separate + 1);
    while (a.stats().kept > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
    CHECK(a.stats().kept == 0);
    CHECK(batches.load() == n);
  }
}

// A connection that resets and comes back is no loss; one that stays gone past link_grace is reported once
// as silent, naming the address (a worker turns that into a failed run naming both hosts: docs/cluster.md).
TEST_CASE("a link that resets comes back quietly; one that stays down is reported silent" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint b(test::config("b"), at_b.callbacks());
  auto bound = b.bind("tcp://127.0.0.1:0");
  auto proxy = std::make_unique<test::reset_proxy>(std::stoi(bound.substr(bound.rfind(':') + 1)));
  auto ca = test::config("a");
  ca.link_grace = 300ms;
  endpoint a(ca, at_a.callbacks());
  auto address = proxy->address();
  auto to_b = a.connect(address);
  a.send(to_b, numbered(0, 0));
  REQUIRE(at_b.next_message(5s));
  proxy->reset_all();  // back within ~100 ms: a disconnect, no silence
  std::this_thread::sleep_for(800ms);
  a.send(to_b, numbered(1, 1));
  REQUIRE(at_b.next_message(5s));
  while (auto p = at_a.next_problem(10ms)) CHECK(p->what != problem::kind::silent);
  proxy.reset();  // gone: connections reset, reconnects refused
  std::optional<problem> silent;
  auto until = std::chrono::steady_clock::now() + 5s;
  while (!silent && std::chrono::steady_clock::now() < until)
    if (auto p = at_a.next_problem(100ms); p && p->what == problem::kind::silent) silent = p;
  REQUIRE(silent);
  CHECK(silent->peer == address);
  CHECK(silent->text.find("did not come back within 300 ms") != std::string::npos);
  CHECK_FALSE(at_a.next_problem(600ms).has_value());  // once per outage
}

TEST_CASE("a message for a peer that is reconnecting waits for it instead of being dropped" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint b(test::config("b"), at_b.callbacks());
  auto bound = b.bind("tcp://127.0.0.1:0");
  b.send_to_name("late", control_msg{0, control::start{}});  // "late" is not connected yet
  std::this_thread::sleep_for(300ms);
  endpoint late(test::config("late"), at_a.callbacks());
  late.connect(bound);
  auto in = at_a.next_message(5s);
  REQUIRE(in);
  CHECK(std::holds_alternative<control::start>(std::get<control_msg>(in->msg).body));
  CHECK_FALSE(at_b.next_problem(50ms));
}

TEST_CASE("an unreachable peer is named after the connect timeout" * doctest::timeout(30)) {
  test::collector at_a;
  endpoint a(test::config("a"), at_a.callbacks());
  std::string free_addr;
  {
    test::collector c;
    endpoint tmp(test::config("tmp"), c.callbacks());
    free_addr = tmp.bind("tcp://127.0.0.1:0");
  }  // closed: nothing listens there now
  connect_options o;
  o.timeout = 1000ms;
  o.role = "worker";
  CHECK_THROWS_WITH_AS(a.connect(free_addr, o), ("worker " + free_addr + " not reachable after 1 s").c_str(),
                       transport_error);
  o.timeout = 300ms;
  CHECK_THROWS_WITH_AS(a.connect(free_addr, o), ("worker " + free_addr + " not reachable after 300 ms").c_str(),
                       transport_error);
}

TEST_CASE("a late peer is reached when it comes up within the timeout" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint a(test::config("a"), at_a.callbacks());
  std::string addr;
  {
    test::collector c;
    endpoint tmp(test::config("tmp"), c.callbacks());
    addr = tmp.bind("tcp://127.0.0.1:0");
  }
  std::optional<endpoint> b;
  std::thread late([&] {
    std::this_thread::sleep_for(300ms);  // the peer starts after the connect began
    b.emplace(test::config("b"), at_b.callbacks());
    b->bind(addr);
  });
  connect_options o;
  o.timeout = 5000ms;
  auto to_b = a.connect(addr, o);
  late.join();
  a.send(to_b, numbered(0, 9));
  auto in = at_b.next_message();
  REQUIRE(in);
  CHECK(first_int(*in) == 9);
}

TEST_CASE("sending to a name that is not connected is reported, not silently dropped" * doctest::timeout(30)) {
  test::collector at_b;
  auto cb = test::config("b");
  cb.reconnect_grace = 200ms;  // how long it waits for the peer to (re)connect before giving up
  endpoint b(cb, at_b.callbacks());
  b.bind("tcp://127.0.0.1:0");
  b.send_to_name("nobody", control_msg{0, control::start{}});
  auto p = at_b.next_problem();
  REQUIRE(p);
  CHECK(p->what == problem::kind::send);
  CHECK(p->text == "send to 'nobody': no such peer is connected: message dropped");
}

TEST_CASE("a problem is logged once: by the owner that takes it, else by the endpoint" * doctest::timeout(30)) {
  // The process's log, captured: the endpoint logs through spdlog's default logger.
  auto logged = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  auto before = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", logged));
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (const auto& line : logged->last_formatted()) n += line.find(what) != std::string::npos ? 1 : 0;
    return n;
  };
  const std::string text = "send to 'nobody': no such peer is connected: message dropped";
  {
    test::collector at_b;  // an owner that takes problems (the driver and the worker log them themselves)
    auto cb = test::config("b");
    cb.reconnect_grace = 100ms;
    endpoint b(cb, at_b.callbacks());
    b.bind("tcp://127.0.0.1:0");
    b.send_to_name("nobody", control_msg{0, control::start{}});
    auto p = at_b.next_problem();
    REQUIRE(p);
    CHECK(p->text == text);
  }
  CHECK(count(text) == 0);  // not also in another format
  {
    auto cc = test::config("c");
    cc.reconnect_grace = 100ms;
    endpoint c(cc, endpoint_callbacks{[](incoming&&) {}, {}});  // no owner for problems: the endpoint logs
    c.bind("tcp://127.0.0.1:0");
    c.send_to_name("nobody", control_msg{0, control::start{}});
    auto until = std::chrono::steady_clock::now() + 10s;
    while (count(text) == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  }
  CHECK(count(text) == 1);
  spdlog::set_default_logger(before);
}

TEST_CASE("undecodable bytes from a peer are reported with the peer's name" * doctest::timeout(30)) {
  test::collector at_a, at_b;
  endpoint a(test::config("a"), at_a.callbacks());
  endpoint b(test::config("b"), at_b.callbacks());
  auto to_b = a.connect(b.bind("tcp://127.0.0.1:0"));
  multipart junk;
  junk.emplace_back(std::string("not a capnp message"));
  a.send_parts(to_b, std::move(junk));
  auto p = at_b.next_problem();
  REQUIRE(p);
  CHECK(p->what == problem::kind::decode);
  CHECK(p->peer == "a");
  CHECK(p->text.starts_with("undecodable message from a: header of 19 bytes"));
}

TEST_CASE("a movable instance's credit waits until the data it sent before is acknowledged (send_fenced)" *
          doctest::timeout(30)) {
  // Instance 1 on host a sends an output to instance 2 on `consumer` (a bare ROUTER that acknowledges only
  // when the test says so), then a credit to instance 0 on host p. The credit must not reach p before the
  // consumer's host has acknowledged the output: the credit says "its outputs are on their hosts".
  zmq::context_t ctx;
  zmq::socket_t consumer(ctx, zmq::socket_type::router);
  consumer.set(zmq::sockopt::linger, 0);
  consumer.bind("tcp://127.0.0.1:*");
  auto consumer_addr = consumer.get(zmq::sockopt::last_endpoint);
  test::collector at_a, at_p;
  endpoint a(test::config("a"), at_a.callbacks());
  endpoint p(test::config("p"), at_p.callbacks());
  auto to_p = a.connect(p.bind("tcp://127.0.0.1:0"));
  auto to_consumer = a.connect(consumer_addr);

  a.send_fenced(to_consumer, envelope{5, 1, 2, 0, local::batch_msg{0, {value{42}}}});
  a.send_fenced(to_p, envelope{5, 1, 0, 0, local::credit_msg{0, 1}});
  // The output arrives at the consumer's host, unacknowledged; the credit waits.
  zmq::message_t who;
  REQUIRE(consumer.recv(who));
  for (bool more = who.more(); more;) {
    zmq::message_t part;
    (void)consumer.recv(part);
    more = part.more();
  }
  CHECK_FALSE(at_p.next_message(300ms));
  CHECK(a.stats().fenced == 1);
  // An acknowledgement of the output (every seq below 1 of stream 1 -> 2 arrived) lets it go.
  auto ack = encode(control_msg{0, control::ack{{{stream_key{5, 1, 2}, 1}}}});
  consumer.send(who, zmq::send_flags::sndmore);
  for (std::size_t i = 0; i < ack.size(); ++i)
    consumer.send(ack[i], i + 1 < ack.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  auto in = at_p.next_message(5s);
  REQUIRE(in);
  auto& e = std::get<envelope>(in->msg);
  CHECK(e.from == 1);
  CHECK(std::get<local::credit_msg>(e.body).credits == 1);
  // Without data out, a credit goes at once.
  a.send_fenced(to_p, envelope{5, 1, 0, 1, local::credit_msg{0, 1}});
  CHECK(at_p.next_message(5s));
  CHECK(a.stats().fenced == 1);
}

TEST_CASE("a movable instance's credit to the host of its outputs goes at once; that host delivers it after them" *
          doctest::timeout(30)) {
  // Instance 1 on host a feeds instance 2 on host p and credits instance 0, also on p.
  test::collector at_a, at_p;
  endpoint a(test::config("a"), at_a.callbacks());
  endpoint p(test::config("p"), at_p.callbacks());
  auto to_p = a.connect(p.bind("tcp://127.0.0.1:0"));
  auto next_body = [&] {
    auto in = at_p.next_message(5s);
    REQUIRE(in);
    return std::get<envelope>(in->msg).body;
  };
  // Through the fence: no wait for an acknowledgement (the credit follows its output on one connection).
  a.send_fenced(to_p, envelope{5, 1, 2, 0, local::batch_msg{0, {value{42}}}});
  a.send_fenced(to_p, envelope{5, 1, 0, 0, local::credit_msg{0, 1}});
  CHECK(std::get<local::batch_msg>(next_body()).values == std::vector<value>{value{42}});
  CHECK(std::get<local::credit_msg>(next_body()).credits == 1);
  CHECK(a.stats().fenced == 0);
  // A credit whose output has not come (lost on the way and being resent, say) waits at p, and so does
  // what follows it on its stream; the output's arrival lets both go, after it.
  envelope credit{5, 1, 0, 1, local::credit_msg{0, 2}};
  credit.after = {{2, 2}};
  a.send_parts(to_p, encode(credit));
  a.send_parts(to_p, encode(envelope{5, 1, 0, 2, local::eos_msg{0}}));
  CHECK_FALSE(at_p.next_message(300ms));
  CHECK(p.stats().gated == 2);
  a.send_parts(to_p, encode(envelope{5, 1, 2, 1, local::batch_msg{0, {value{43}}}}));
  CHECK(std::get<local::batch_msg>(next_body()).values == std::vector<value>{value{43}});
  CHECK(std::get<local::credit_msg>(next_body()).credits == 2);
  CHECK(std::holds_alternative<local::eos_msg>(next_body()));
  // A credit still waiting when its sender moves is forgotten with it (its producer sends again).
  credit.seq = 3;
  credit.after = {{2, 5}};
  a.send_parts(to_p, encode(credit));
  CHECK_FALSE(at_p.next_message(300ms));
  p.forget_sender(5, 1);
  a.send_parts(to_p, encode(envelope{6, 1, 2, 0, local::batch_msg{0, {value{44}}}}));  // another run: goes
  CHECK(std::get<local::batch_msg>(next_body()).values == std::vector<value>{value{44}});
  CHECK_FALSE(at_p.next_message(300ms));
}
