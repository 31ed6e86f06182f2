// tests/fuzz/wire_seeds.cpp: `fuzz_wire_seeds DIR` writes one fuzz_wire input per kind of wire message, encoded by
// today's encoder, so that fuzzing starts from valid frames of the current wire version (every data and
// control message, every value type, tensors inline and out of line) instead of finding capnp from nothing.
// The layout is fuzz_wire's: byte 0 is the number of payload parts, then a 2-byte little-endian length per
// part, then the header, then the parts (the last part last).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "loom/runtime/transport/codec.hpp"

namespace {

using namespace loom;
using namespace loom::transport;

int written = 0, wanted = 0;

void write(const std::string& dir, const std::string& name, const multipart& parts) {
  ++wanted;
  if (parts.empty() || parts.size() > 4) return;
  std::vector<unsigned char> out;
  out.push_back(static_cast<unsigned char>(parts.size() - 1));
  // fuzz_wire takes the payloads from the end of its input, first payload last, each at most 65535 bytes.
  for (std::size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].size() > 0xFFFF) return;
    out.push_back(static_cast<unsigned char>(parts[i].size() & 0xFF));
    out.push_back(static_cast<unsigned char>(parts[i].size() >> 8));
  }
  auto append = [&](const zmq::message_t& m) {
    auto b = static_cast<const unsigned char*>(m.data());
    out.insert(out.end(), b, b + m.size());
  };
  append(parts[0]);
  for (std::size_t i = parts.size() - 1; i >= 1; --i) append(parts[i]);
  std::ofstream(dir + "/seed-" + name, std::ios::binary).write(reinterpret_cast<const char*>(out.data()),
                                                               static_cast<std::streamsize>(out.size()));
  ++written;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_wire_seeds DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  value_list every{value{}, value{true}, value{std::int64_t{-7}}, value{2.5}, value{std::string("text")},
                   value{bytes(std::vector<std::byte>(3, std::byte{0xAB}))},
                   value{value_list{1, 2}}, value{value_map{{"k", "v"}}},
                   value{tensor::from<float>({2, 2}, {1, 2, 3, 4})}, value{tensor::zeros(dtype::u8, {0})}};
  write(dir, "batch-inline", encode(envelope{1, 2, 3, 0, local::batch_msg{5, every}}));
  write(dir, "batch-parts", encode(envelope{1, 2, 3, 1, local::batch_msg{5, every}}, {8}));
  write(dir, "credit", encode(envelope{1, 2, 3, 2, local::credit_msg{9, 64}}));
  write(dir, "eos", encode(envelope{1, 2, 3, 3, local::eos_msg{11}}));
  write(dir, "call", encode(envelope{1, 2, 3, 4, local::call_msg{77, value{value_map{{"q", "why"}}}}}));
  write(dir, "reply", encode(envelope{1, 2, 3, 5, local::reply_msg{77, false, value{}, "tool failed"}}));
  write(dir, "cancel-call", encode(envelope{1, 2, 3, 6, local::cancel_call_msg{77}}));
  write(dir, "call-traced", encode(envelope{1, 2, 3, 7, local::call_msg{78, value{1}, 0x0123456789abcdefull}}));
  write(dir, "barrier", encode(envelope{1, 2, 3, 8, local::barrier_msg{5, 77}}));
  using namespace control;
  plan p{{{"h1", "tcp://127.0.0.1:7100"}, {"h2", "tcp://127.0.0.1:7101"}}, {0, 1, 1, 0}, {0, -1, -1, -1}};
  write(dir, "hello", encode(control_msg{0, hello{"w1"}}));
  write(dir, "deploy", encode(control_msg{9, deploy{"nodes: {}\n", p}}));
  write(dir, "start", encode(control_msg{9, start{}}));
  write(dir, "cancel", encode(control_msg{9, cancel{"SIGINT"}}));
  write(dir, "done", encode(control_msg{9, done{4, true, "boom", {1, 2, 3, 4, 5, 6}}}));
  write(dir, "release", encode(control_msg{9, release{}}));
  write(dir, "heartbeat", encode(control_msg{0, heartbeat{12, -5}}));
  write(dir, "heartbeat-echo", encode(control_msg{0, heartbeat{12, -5, "# TYPE a counter\na 1\n", 1764000000123456789}}));
  write(dir, "progress", encode(control_msg{9, progress{{{3, {1, 2, 3, 4, 5, 6}, 7}},
                                                       {{"a", "a", "b", "a.out -> b.in", 100, true}}}}));
  write(dir, "spans", encode(control_msg{9, spans{"{\"host\":\"a\",\"spans\":[]}"}}));
  write(dir, "run-ended", encode(control_msg{9, run_ended{false, "lost h2"}}));
  write(dir, "refused", encode(control_msg{0, refused{"busy"}}));
  write(dir, "snapshot", encode(control_msg{9, snapshot{12}}));
  write(dir, "decide", encode(control_msg{9, decide{4, 17, {loom::decision::verdict::edit, value{"fixed"}, "", "a@h"}}}));
  write(dir, "asked", encode(control_msg{9, control::asked{}}));
  write(dir, "snapshot-part", encode(control_msg{9, snapshot_part{12, 3, value{value_map{{"instance", 3}}}}}));
  write(dir, "deploy-restore", encode(control_msg{9, deploy{.graph_yaml = "nodes: {}\n", .plan = p, .restore_epoch = 12,
                                                           .restore = {{12, 0, value{value_map{{"instance", 0}}}}}}}));
  std::printf("fuzz_wire_seeds: %d seed inputs in %s\n", written, dir.c_str());
  return written == wanted ? 0 : 1;  // every message above, each in one seed
}
