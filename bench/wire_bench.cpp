// bench/wire_bench.cpp: one edge across two processes on loopback: loom's wire path (encode a batch of
// values -> endpoint -> decode -> deliver to a callback, credits flowing back) against raw ZeroMQ PUSH/PULL
// in the same run, for 64 B values (messages/s) and 1 MiB tensors (bandwidth). The receiver is a forked
// child; it times from its first message to its last and reports through a pipe. First, the codec alone:
// encode and decode of batch envelopes in this process (no sockets), ns per value, the median of 5 rounds:
// the figure to compare when the codec changes (the edge's own figures swing by 2x on a shared machine).
// Prints markdown.
//
//   loom_wire_bench [--codec N] [--small N] [--large N] [--batch B] [--window W]
//   (--codec 0: no codec rows; --small 0 --large 0: the codec alone)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "loom/runtime/transport/codec.hpp"
#include "loom/runtime/transport/endpoint.hpp"

using namespace loom;
using namespace loom::transport;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  std::uint64_t codec = 1'000'000;  // values per round of the codec alone
  std::uint64_t small = 2'000'000;  // 64 B messages
  std::uint64_t large = 2'000;      // 1 MiB tensors
  std::uint32_t batch = 256;        // values per envelope at 64 B
  std::uint32_t window = 8192;      // credits (values in flight) at 64 B
};

// Runs `receiver(write_fd)` in a child; the child writes its address, then its elapsed seconds.
struct child {
  pid_t pid = -1;
  int rd = -1;
  explicit child(const std::function<void(int)>& receiver) {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      receiver(fds[1]);
      ::_exit(0);
    }
    ::close(fds[1]);
    rd = fds[0];
  }
  std::string read_line() {
    std::string s;
    char c;
    while (::read(rd, &c, 1) == 1 && c != '\n') s += c;
    return s;
  }
  ~child() {
    ::close(rd);
    int status;
    ::waitpid(pid, &status, 0);
  }
};

void write_line(int fd, const std::string& s) {
  auto line = s + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

double elapsed(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

// CPU seconds (user + system) of this whole process so far, every thread (zmq's and the endpoint's too).
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// One side's figures: wall seconds from the receiver's first message to its last, and the CPU seconds both
// processes spent on the transfer (the receiver's over its wait, the sender's over its sends). Under load
// (a shared machine) wall time swings by 2x; CPU time per value moves much less.
struct result {
  double secs = 0;
  double cpu = 0;
};

// ---- the codec alone: a batch envelope of `batch` copies of v encoded and decoded, until `count` values ----
double codec_ns_per_value(std::uint64_t count, const value& v, std::uint32_t batch) {
  envelope e{1, 0, 1, 0, local::batch_msg{0, std::vector<value>(batch, v)}};
  std::vector<double> rounds;
  for (int round = 0; round < 5; ++round) {
    std::uint64_t done = 0;
    auto t0 = clock_type::now();
    while (done < count) {
      auto d = decode(encode(e));
      if (!d) {
        fmt::print(stderr, "codec: {}\n", d.error);
        std::abort();
      }
      done += std::get<local::batch_msg>(std::get<envelope>(*d.msg).body).values.size();
    }
    rounds.push_back(1e9 * elapsed(t0) / static_cast<double>(done));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

// ---- raw ZeroMQ PUSH/PULL: one zmq message per value, sent from one buffer without copies ----
result raw_zmq(std::uint64_t count, std::size_t size) {
  child rx([&](int fd) {
    double c0 = cpu_seconds();
    zmq::context_t ctx;
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.set(zmq::sockopt::rcvhwm, 0);
    pull.bind("tcp://127.0.0.1:*");
    write_line(fd, pull.get(zmq::sockopt::last_endpoint));
    zmq::message_t m;
    (void)pull.recv(m);
    auto t0 = clock_type::now();
    for (std::uint64_t i = 1; i < count; ++i) (void)pull.recv(m);
    write_line(fd, fmt::format("{} {}", elapsed(t0), cpu_seconds() - c0));
  });
  auto addr = rx.read_line();
  double c0 = cpu_seconds();
  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, 1000);  // raw ZeroMQ's own flow control
  push.connect(addr);
  std::vector<char> buf(size, 'x');
  for (std::uint64_t i = 0; i < count; ++i) {
    // Large: zero-copy from one buffer, like loom's payload parts; small: copied, as any raw user would.
    zmq::message_t m = size >= 1024 ? zmq::message_t(buf.data(), buf.size(), nullptr, nullptr)
                                    : zmq::message_t(buf.data(), buf.size());
    (void)push.send(m, zmq::send_flags::none);
  }
  auto line = rx.read_line();
  result r;
  r.secs = std::stod(line);
  r.cpu = std::stod(line.substr(line.find(' ') + 1)) + cpu_seconds() - c0;
  return r;
}

// ---- loom: envelopes of `batch` values through two endpoints, credits back per received batch ----
result loom_wire(std::uint64_t count, const value& v, std::uint32_t batch, std::uint32_t window) {
  child rx([&](int fd) {
    double c0 = cpu_seconds();
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t received = 0;
    clock_type::time_point t0;
    endpoint* self = nullptr;
    stream_numbering numbers;
    endpoint ep(
        [] {
          endpoint_config c;
          c.name = "rx";
          return c;
        }(),
        {[&](incoming&& in) {
           auto& e = std::get<envelope>(in.msg);
           auto& b = std::get<local::batch_msg>(e.body);
           if (received == 0) t0 = clock_type::now();
           auto n = static_cast<std::uint32_t>(b.values.size());
           self->send_to_name(in.peer, envelope{e.run, 1, 0, numbers.next({e.run, 1, 0}), local::credit_msg{b.link, n}});
           std::lock_guard lock(mu);
           received += n;
           if (received >= count) cv.notify_all();
         },
         [](const problem& p) { fmt::print(stderr, "receiver: {}\n", p.text); }});
    self = &ep;
    write_line(fd, ep.bind("tcp://127.0.0.1:0"));
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return received >= count; });
    write_line(fd, fmt::format("{} {}", elapsed(t0), cpu_seconds() - c0));
  });
  auto addr = rx.read_line();
  double c0 = cpu_seconds();
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t credits = window;
  endpoint_config c;
  c.name = "tx";
  endpoint ep(c, {[&](incoming&& in) {
                    auto& cr = std::get<local::credit_msg>(std::get<envelope>(in.msg).body);
                    std::lock_guard lock(mu);
                    credits += cr.credits;
                    cv.notify_all();
                  },
                  [](const problem& p) { fmt::print(stderr, "sender: {}\n", p.text); }});
  auto peer = ep.connect(addr);
  stream_numbering numbers;
  std::vector<value> values(batch, v);
  for (std::uint64_t sent = 0; sent < count;) {
    auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(batch, count - sent));
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return credits >= n; });
      credits -= n;
    }
    ep.send(peer, envelope{1, 0, 1, numbers.next({1, 0, 1}),
                           local::batch_msg{0, std::vector<value>(values.begin(), values.begin() + n)}});
    sent += n;
  }
  auto line = rx.read_line();
  std::unique_lock lock(mu);  // every credit back before the endpoints close
  cv.wait(lock, [&] { return credits == window; });
  result r;
  r.secs = std::stod(line);
  r.cpu = std::stod(line.substr(line.find(' ') + 1)) + cpu_seconds() - c0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    auto v = std::strtoull(argv[i + 1], nullptr, 10);
    if (k == "--codec") s.codec = v;
    else if (k == "--small") s.small = v;
    else if (k == "--large") s.large = v;
    else if (k == "--batch") s.batch = static_cast<std::uint32_t>(v);
    else if (k == "--window") s.window = static_cast<std::uint32_t>(v);
  }
  constexpr std::size_t mib = 1 << 20;
  value small{bytes(64, std::byte{1})};
  value large{tensor::zeros(dtype::u8, {static_cast<std::int64_t>(mib)})};

  if (s.codec > 0) {
    // The shapes a batch takes through the Value struct (a batch of plain ints or floats skips it).
    value record{value_map{{"id", 12345},
                           {"name", std::string("a record's name")},
                           {"score", 0.75},
                           {"tags", value_list{std::string("alpha"), std::string("beta"), true, value{}}}}};
    value small_tensor{tensor::zeros(dtype::f32, {64})};
    fmt::print("## The codec alone: a batch envelope encoded and decoded in one process\n\n");
    fmt::print("| value (batch {}) | ns per value (median of 5 rounds of {}) |\n|---|---:|\n", s.batch, s.codec);
    fmt::print("| 64 B bytes | {:.1f} |\n", codec_ns_per_value(s.codec, small, s.batch));
    fmt::print("| a map of 4 (int, string, float, a list of 4) | {:.1f} |\n", codec_ns_per_value(s.codec, record, s.batch));
    fmt::print("| f32 tensor [64] (inline) | {:.1f} |\n\n", codec_ns_per_value(s.codec, small_tensor, s.batch));
  }
  if (s.small == 0 && s.large == 0) return 0;
  auto rs = raw_zmq(s.small, 64);
  auto ls = loom_wire(s.small, small, s.batch, s.window);
  auto rl = raw_zmq(s.large, mib);
  auto ll = loom_wire(s.large, large, 4, 16);
  double raw_small = rs.secs, loom_small = ls.secs, raw_large = rl.secs, loom_large = ll.secs;

  auto rate = [](std::uint64_t n, double secs) { return n / secs; };
  auto gbps = [&](std::uint64_t n, double secs) { return n * double(mib) / secs / 1e9; };
  fmt::print("## Wire: one edge across two processes (loopback TCP)\n\n");
  fmt::print("| payload | raw ZeroMQ PUSH/PULL | loom (batch, credits) | loom / raw |\n|---|---|---|---|\n");
  fmt::print("| 64 B values, {} | {:.2f} M msgs/s | {:.2f} M values/s (batch {}, window {}) | {:.0f}% |\n", s.small,
             rate(s.small, raw_small) / 1e6, rate(s.small, loom_small) / 1e6, s.batch, s.window,
             100 * raw_small / loom_small);
  fmt::print("| 1 MiB tensors, {} | {:.2f} GB/s | {:.2f} GB/s (batch 4, window 16) | {:.0f}% |\n", s.large,
             gbps(s.large, raw_large), gbps(s.large, loom_large), 100 * raw_large / loom_large);
  // CPU of both processes per value moved: steadier than wall time on a shared machine.
  fmt::print("\n| payload | raw ZeroMQ CPU per value | loom CPU per value | raw / loom |\n|---|---|---|---|\n");
  fmt::print("| 64 B | {:.3f} us | {:.3f} us | {:.0f}% |\n", 1e6 * rs.cpu / s.small, 1e6 * ls.cpu / s.small,
             100 * rs.cpu / ls.cpu);
  fmt::print("| 1 MiB | {:.1f} us | {:.1f} us | {:.0f}% |\n", 1e6 * rl.cpu / s.large, 1e6 * ll.cpu / s.large,
             100 * rl.cpu / ll.cpu);
  return 0;
}
