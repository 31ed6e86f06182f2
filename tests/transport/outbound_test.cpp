// tests/transport/outbound_test.cpp: the sending half of the reliable stream rule (outbound_streams), with
// no socket: envelopes kept until acknowledged, handed back in order per stream for a resend on their own
// connection only, forgotten with their run or their connection, and sharing the buffers of what was sent.
#include <doctest/doctest.h>

#include <cstring>

#include "loom/runtime/transport/outbound.hpp"

using namespace loom;
using namespace loom::transport;

namespace {

multipart parts_with(std::uint64_t seq, std::size_t payload = 0) {
  multipart p;
  auto head = std::to_string(seq);
  p.emplace_back(head.data(), head.size());
  if (payload) p.emplace_back(payload);
  return p;
}

}  // namespace

TEST_CASE("kept until acknowledged, handed back in order for its own connection's resend") {
  outbound_streams out;
  stream_key s{1, 0, 1}, t{1, 0, 2}, u{2, 3, 4};
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto p = parts_with(i);
    out.keep(s, 0, outbound_streams::copy(i, p));
  }
  for (std::uint64_t i = 0; i < 2; ++i) {
    auto p = parts_with(i);
    out.keep(t, 1, outbound_streams::copy(i, p));
    out.keep(u, 0, outbound_streams::copy(i, p));
  }
  CHECK(out.kept() == 9);
  out.acknowledged(s, 3);  // 0, 1, 2 arrived
  CHECK(out.kept() == 6);
  out.acknowledged(s, 3);  // a repeated ack changes nothing
  out.acknowledged(stream_key{9, 9, 9}, 5);  // nor one of a stream never sent
  CHECK(out.kept() == 6);

  auto again = out.take(0);  // connection 0 came back
  CHECK(out.kept() == 2);    // t's, on connection 1, stay
  std::vector<std::uint64_t> s_seqs, u_seqs;
  for (auto& [k, m] : again) {
    auto parts = outbound_streams::parts_of(m);
    CHECK(parts[0].to_string() == std::to_string(m.seq));
    (k == s ? s_seqs : u_seqs).push_back(m.seq);
  }
  CHECK(s_seqs == std::vector<std::uint64_t>{3, 4});  // in order per stream
  CHECK(u_seqs == std::vector<std::uint64_t>{0, 1});
  CHECK(out.take(0).empty());

  out.forget_owner(1);  // connection 1 dropped
  CHECK(out.kept() == 0);
  auto p = parts_with(7);
  out.keep(u, 0, outbound_streams::copy(7, p));
  out.forget_run(3);
  CHECK(out.kept() == 1);
  out.forget_run(2);
  CHECK(out.kept() == 0);
}

TEST_CASE("a kept envelope shares the buffers of the one sent") {
  auto p = parts_with(0, 1 << 20);
  std::memset(p[1].data(), 7, p[1].size());
  auto k = outbound_streams::copy(0, p);
  auto again = outbound_streams::parts_of(k);
  REQUIRE(again.size() == 2);
  CHECK(again[1].data() == p[1].data());  // a reference, not a copy of the data
  CHECK(again[1].size() == std::size_t{1} << 20);
}
