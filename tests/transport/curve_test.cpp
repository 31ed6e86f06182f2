// tests/transport/curve_test.cpp: CurveZMQ between endpoints (right key accepted, wrong or no key refused
// and reported on both sides) and the key files `loom keygen` writes.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/transport/endpoint.hpp"
#include "runtime/transport/keys.hpp"
#include "tests/transport/collector.hpp"

using namespace loom;
using namespace loom::transport;
using namespace std::chrono_literals;

namespace {

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "loom-keys-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()));
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// Waits for a refusal among the problems (a failed handshake may also be reported in other words first).
std::optional<problem> refusal(test::collector& c) {
  while (auto p = c.next_problem(5s))
    if (p->what == problem::kind::refused) return p;
  return std::nullopt;
}

}  // namespace

TEST_CASE("keygen writes a secret key only its owner can read and a public key" * doctest::timeout(10)) {
  REQUIRE(curve_available());
  temp_dir dir;
  auto prefix = (dir.path / "worker1").string();
  auto keys = generate_keypair();
  write_keypair(prefix, keys);
  CHECK(mode_of(prefix + ".key") == 0600);
  CHECK(mode_of(prefix + ".pub") == 0644);
  auto loaded = load_keypair(prefix);
  CHECK(loaded.public_key == keys.public_key);
  CHECK(loaded.secret_key == keys.secret_key);
  CHECK(load_public_key(prefix + ".pub") == keys.public_key);
  CHECK(valid_z85_key(keys.public_key));
  CHECK_FALSE(valid_z85_key("short"));
  // Never overwritten; a secret key others may read is refused.
  CHECK_THROWS_WITH_AS(write_keypair(prefix, generate_keypair()), (prefix + ".key exists; remove it first to make a new key").c_str(),
                       key_error);
  ::chmod((prefix + ".key").c_str(), 0644);
  CHECK_THROWS_WITH_AS(load_keypair(prefix),
                       (prefix + ".key may be read by others (mode 644); run `chmod 600 " + prefix + ".key`").c_str(),
                       key_error);
  // A public key that does not belong to the secret key.
  auto other = (dir.path / "other").string();
  write_keypair(other, generate_keypair());
  std::filesystem::remove(other + ".pub");
  std::ofstream(other + ".pub") << keys.public_key << "\n";
  CHECK_THROWS_AS(load_keypair(other), key_error);
}

TEST_CASE("a curve client with an allowed key connects and exchanges frames" * doctest::timeout(30)) {
  auto server_keys = generate_keypair(), client_keys = generate_keypair();
  test::collector at_server, at_client;
  endpoint server(test::config("server", server_keys, {client_keys.public_key}),
                  at_server.callbacks());
  auto addr = server.bind("tcp://127.0.0.1:0");
  endpoint client(test::config("client", client_keys), at_client.callbacks());
  auto peer = client.connect(addr, test::connecting(server_keys.public_key));
  auto big = tensor::zeros(dtype::u8, {1 << 16});
  client.send(peer, envelope{1, 0, 1, 0, local::batch_msg{0, {value{"secret"}, value{big}}}});
  auto in = at_server.next_message();
  REQUIRE(in);
  CHECK(in->peer == "client");
  auto& b = std::get<local::batch_msg>(std::get<envelope>(in->msg).body);
  CHECK(b.values.at(0) == value{"secret"});
  CHECK(b.values.at(1) == value{big});
  server.send_to_name("client", control_msg{1, control::start{}});
  CHECK(at_client.next_message());
  CHECK_FALSE(at_server.next_problem(50ms));
}

TEST_CASE("a curve client whose key is not allowed is refused, and both sides say so" * doctest::timeout(30)) {
  auto server_keys = generate_keypair(), allowed = generate_keypair(), intruder = generate_keypair();
  test::collector at_server, at_client;
  endpoint server(test::config("server", server_keys, {allowed.public_key}),
                  at_server.callbacks());
  auto addr = server.bind("tcp://127.0.0.1:0");
  endpoint client(test::config("intruder", intruder), at_client.callbacks());
  CHECK_THROWS_WITH_AS(client.connect(addr, test::connecting(server_keys.public_key, 5000ms)),
                       ("peer " + addr + " refused this endpoint's curve key (ZAP status 400)").c_str(),
                       transport_error);
  auto p = refusal(at_server);
  REQUIRE(p);
  CHECK(p->peer == intruder.public_key);
  CHECK(p->text.find("with curve key " + intruder.public_key + ": not in the allowed client keys") !=
        std::string::npos);
  CHECK_FALSE(at_server.next_message(50ms));
}

TEST_CASE("a client without curve keys is refused by a curve server" * doctest::timeout(30)) {
  auto server_keys = generate_keypair();
  test::collector at_server, at_client;
  endpoint server(test::config("server", server_keys, {}), at_server.callbacks());
  auto addr = server.bind("tcp://127.0.0.1:0");
  endpoint plain(test::config("plain"), at_client.callbacks());
  try {
    plain.connect(addr, test::connecting({}, 3000ms));
    FAIL("connected without keys");
  } catch (const transport_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(addr) != std::string::npos);
  }
  auto p = refusal(at_server);
  REQUIRE(p);
  INFO(p->text);
  CHECK(p->text.starts_with("refused a peer on " + addr));
  CHECK_FALSE(at_server.next_message(50ms));
}

TEST_CASE("a client with the wrong server key cannot connect" * doctest::timeout(30)) {
  auto server_keys = generate_keypair(), client_keys = generate_keypair(), wrong = generate_keypair();
  test::collector at_server, at_client;
  endpoint server(test::config("server", server_keys, {client_keys.public_key}),
                  at_server.callbacks());
  auto addr = server.bind("tcp://127.0.0.1:0");
  endpoint client(test::config("client", client_keys), at_client.callbacks());
  CHECK_THROWS_AS(client.connect(addr, test::connecting(wrong.public_key, 3000ms)), transport_error);
  CHECK(refusal(at_server));
}
