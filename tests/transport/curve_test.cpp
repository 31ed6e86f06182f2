// tests/transport/curve_test.cpp: CurveZMQ between endpoints (right key accepted, wrong or no key refused
// and reported on both sides) and the key files `loom keygen` writes.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "loom/runtime/transport/endpoint.hpp"
#include "loom/runtime/transport/keys.hpp"
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
                       ("peer " + addr + " refused this endpoint's curve key (ZAP status 400): it does not allow the "
                        "public key " + intruder.public_key + " (a worker lets in the driver keys of its --allow)")
                           .c_str(),
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
    // The client says which side lacks keys, not "no detail".
    CHECK(std::string(e.what()).find("peer requires CurveZMQ keys and this side has none (plain TCP: --insecure)") !=
          std::string::npos);
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
  // The client says why at once (not "no detail", not a timeout): the server holds another key pair.
  auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(client.connect(addr, test::connecting(wrong.public_key, 3000ms)),
                       ("handshake with peer " + addr + " failed: peer closed the connection in the CurveZMQ "
                        "handshake: it holds another key pair than this side expects of it (public key " +
                        wrong.public_key + ": it runs with another host's or another user's keys), or it runs "
                        "without keys (plain TCP: a worker started with --insecure)")
                           .c_str(),
                       transport_error);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK(refusal(at_server));
}

TEST_CASE("a curve client at a server without keys says the server runs without them" * doctest::timeout(30)) {
  auto client_keys = generate_keypair();
  test::collector at_server, at_client;
  endpoint server(test::config("server"), at_server.callbacks());
  auto addr = server.bind("tcp://127.0.0.1:0");
  endpoint client(test::config("client", client_keys), at_client.callbacks());
  // Which of the two texts comes is a race (see endpoint.cpp); both say the server may run without keys.
  auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(client.connect(addr, test::connecting(generate_keypair().public_key, 3000ms)),
                       doctest::Contains("runs without keys (plain TCP: a worker started with --insecure)"),
                       transport_error);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK_FALSE(at_server.next_message(50ms));
}

TEST_CASE("the per-user key pair is made once, private, and found again" * doctest::timeout(30)) {
  REQUIRE(curve_available());
  temp_dir dir;
  auto home = dir.path / "config";
  const char* saved = std::getenv("XDG_CONFIG_HOME");
  std::string was = saved ? saved : "";
  ::setenv("XDG_CONFIG_HOME", home.c_str(), 1);
  CHECK(user_key_dir() == (home / "loom").string());
  // Eight processes start at once with no pair yet: one makes it, all end with the same.
  std::vector<pid_t> children;
  auto out = dir.path / "seen";
  std::filesystem::create_directories(out);
  for (int k = 0; k < 8; ++k) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 1;
      try {
        auto mine = user_keypair();
        std::ofstream(out / std::to_string(k)) << mine.keys.public_key << " " << (mine.made ? 1 : 0);
        rc = 0;
      } catch (...) {
      }
      ::_exit(rc);
    }
    children.push_back(pid);
  }
  for (auto pid : children) {
    int status = -1;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  auto first = user_keypair();
  CHECK_FALSE(first.made);
  CHECK(first.prefix == (home / "loom" / "user").string());
  int made = 0;
  for (int k = 0; k < 8; ++k) {
    std::ifstream in(out / std::to_string(k));
    std::string key;
    int m = 0;
    in >> key >> m;
    CHECK(key == first.keys.public_key);
    made += m;
  }
  CHECK(made == 1);
  CHECK(mode_of(home / "loom") == 0700);
  CHECK(mode_of(first.prefix + ".key") == 0600);
  CHECK(load_public_key(first.prefix + ".pub") == first.keys.public_key);
  // No temporary files are left behind.
  CHECK(std::distance(std::filesystem::directory_iterator(home / "loom"), std::filesystem::directory_iterator()) == 2);
  // A lost .pub is written again from the secret key.
  std::filesystem::remove(first.prefix + ".pub");
  CHECK(user_keypair().keys.public_key == first.keys.public_key);
  // A folder others may read is refused, naming the fix.
  ::chmod((home / "loom").c_str(), 0755);
  CHECK_THROWS_WITH_AS(user_keypair(),
                       ((home / "loom").string() + " may be read by others (mode 755); run `chmod 700 " +
                        (home / "loom").string() + "`")
                           .c_str(),
                       key_error);
  if (saved) ::setenv("XDG_CONFIG_HOME", was.c_str(), 1);
  else ::unsetenv("XDG_CONFIG_HOME");
}
