// bench/zmq_pipeline.cpp: `zmq_pipeline_batched`, the raw ZeroMQ anchor for a graph across two hosts. The
// same three stages as bench/xhost_bench.sh runs through loom, in two processes on loopback TCP: numbers
// (process a, a thread) -> pass (process b) -> tally (process a, another thread), integers in batches of
// `--batch` (64) 8-byte ints per zmq message, PUSH/PULL with ZeroMQ's own flow control (HWM 1000 messages
// each way). Prints one line: `zmq_pipeline_batched: N values in S s: R M values/s`. The clock runs from the
// first send to the tally's last value; the tally checks the count and the sum, so nothing is lost unseen.
// `--curve 1`: both connections use CurveZMQ (every byte encrypted, as loom's workers with their keys), the
// binding side as the server; the anchor for a loom run without --insecure. Its line says `(CurveZMQ)`.
//
//   loom_zmq_pipeline [--count N] [--batch B] [--curve 0|1]
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace {

// CurveZMQ keys, made before the fork so both processes know them (Z85 text, 40 characters each).
struct curve_keys {
  bool on = false;
  char server_public[41]{}, server_secret[41]{}, client_public[41]{}, client_secret[41]{};
};
curve_keys keys;

void as_server(zmq::socket_t& s) {
  if (!keys.on) return;
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, std::string(keys.server_secret));
}

void as_client(zmq::socket_t& s) {
  if (!keys.on) return;
  s.set(zmq::sockopt::curve_serverkey, std::string(keys.server_public));
  s.set(zmq::sockopt::curve_publickey, std::string(keys.client_public));
  s.set(zmq::sockopt::curve_secretkey, std::string(keys.client_secret));
}

std::string read_line(int fd) {
  std::string s;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') s += c;
  return s;
}

void write_line(int fd, const std::string& s) {
  auto line = s + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

// Process b: pull a batch, hand it on unchanged (flow.forward), until the empty batch that ends the stream.
void pass(int fd, int back_fd) {
  zmq::context_t ctx;
  zmq::socket_t in(ctx, zmq::socket_type::pull);
  as_server(in);
  in.bind("tcp://127.0.0.1:*");
  write_line(fd, in.get(zmq::sockopt::last_endpoint));
  auto tally_address = read_line(back_fd);
  zmq::socket_t out(ctx, zmq::socket_type::push);
  out.set(zmq::sockopt::linger, -1);
  as_client(out);
  out.connect(tally_address);
  while (true) {
    zmq::message_t m;
    (void)in.recv(m);
    bool end = m.size() == 0;
    (void)out.send(m, zmq::send_flags::none);
    if (end) break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t count = 20'000'000;
  std::uint64_t batch = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    auto v = std::strtoull(argv[i + 1], nullptr, 10);
    if (k == "--count") count = v;
    else if (k == "--batch") batch = v;
    else if (k == "--curve") keys.on = v != 0;
  }
  if (keys.on && (zmq_curve_keypair(keys.server_public, keys.server_secret) != 0 ||
                  zmq_curve_keypair(keys.client_public, keys.client_secret) != 0)) {
    fmt::print(stderr, "zmq_pipeline_batched: this libzmq has no CurveZMQ\n");
    return 1;
  }
  if (batch == 0) batch = 1;
  int to_parent[2], to_child[2];
  if (::pipe(to_parent) != 0 || ::pipe(to_child) != 0) return 1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(to_parent[0]);
    ::close(to_child[1]);
    pass(to_parent[1], to_child[0]);
    ::_exit(0);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  auto pass_address = read_line(to_parent[0]);

  zmq::context_t ctx;
  zmq::socket_t tally_in(ctx, zmq::socket_type::pull);
  as_server(tally_in);
  tally_in.bind("tcp://127.0.0.1:*");
  write_line(to_child[1], tally_in.get(zmq::sockopt::last_endpoint));
  std::uint64_t got = 0, sum = 0;
  std::thread tally([&] {
    while (true) {
      zmq::message_t m;
      (void)tally_in.recv(m);
      if (m.size() == 0) break;
      const auto* v = static_cast<const std::int64_t*>(m.data());
      std::size_t n = m.size() / sizeof(std::int64_t);
      for (std::size_t i = 0; i < n; ++i) sum += static_cast<std::uint64_t>(v[i]);
      got += n;
    }
  });

  zmq::socket_t numbers(ctx, zmq::socket_type::push);
  numbers.set(zmq::sockopt::linger, -1);
  as_client(numbers);
  numbers.connect(pass_address);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::int64_t> buf(batch);
  for (std::uint64_t next = 0; next < count;) {
    auto n = std::min<std::uint64_t>(batch, count - next);
    for (std::uint64_t i = 0; i < n; ++i) buf[i] = static_cast<std::int64_t>(next + i);
    (void)numbers.send(zmq::buffer(buf.data(), n * sizeof(std::int64_t)), zmq::send_flags::none);
    next += n;
  }
  (void)numbers.send(zmq::message_t(), zmq::send_flags::none);  // end of stream
  tally.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::uint64_t want = count == 0 ? 0 : count * (count - 1) / 2;
  if (got != count || sum != want) {
    fmt::print(stderr, "zmq_pipeline_batched: got {} values (sum {}), expected {} (sum {})\n", got, sum, count, want);
    return 1;
  }
  fmt::print("zmq_pipeline_batched: {} values in {:.3f} s: {:.2f} M values/s (batches of {}{})\n", count, secs,
             static_cast<double>(count) / secs / 1e6, batch, keys.on ? ", CurveZMQ" : "");
  return 0;
}
