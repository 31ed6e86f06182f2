// Cluster files: the examples in configs/cluster/ load; hosts, GPUs, labels and key files read as written.
#include <doctest/doctest.h>

#include <filesystem>

#include "loom/runtime/placement/cluster.hpp"

namespace fs = std::filesystem;
using namespace loom;
using namespace loom::placement;

TEST_CASE("every example cluster file in configs/cluster/ loads" * doctest::timeout(10)) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(LOOM_SOURCE_DIR) / "configs" / "cluster")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    graph::diagnostics diags;
    auto c = load_cluster_file(entry.path().string(), diags);
    CAPTURE(entry.path());
    CHECK_MESSAGE(c.has_value(), diags.str());
    CHECK(diags.all().empty());
  }
  CHECK(files >= 2);
}

TEST_CASE("the two-host local cluster has workers on ports 7101 and 7102" * doctest::timeout(10)) {
  graph::diagnostics diags;
  auto c = load_cluster_file(std::string(LOOM_SOURCE_DIR) + "/configs/cluster/two_local.yaml", diags);
  REQUIRE(c);
  REQUIRE(c->hosts.size() == 2);
  CHECK(c->hosts[0].address == "tcp://127.0.0.1:7101");
  CHECK(c->hosts[1].address == "tcp://127.0.0.1:7102");
  CHECK(c->find("b") == 1);
  CHECK(c->find("c") == -1);
  CHECK_FALSE(c->curve);
}

TEST_CASE("hosts read cpus, memory sizes, GPU lists or counts, labels and CurveZMQ key files" * doctest::timeout(10)) {
  graph::diagnostics diags;
  auto c = load_cluster_text(R"(name: lab
hosts:
  - name: a
    address: tcp://gpu-a.lab:7101
    cpus: 16
    memory: 64GiB
    gpus: [{memory: 80GiB, name: H100}, {memory: 40GiB}]
    labels: {zone: paris, tier: train}
  - name: b
    address: "tcp://[::1]:7102"
    gpus: 4
security:
  curve: {server_key_file: keys/server.key, client_key_file: /etc/loom/client.key}
)", "conf/lab.yaml", diags);
  REQUIRE_MESSAGE(c, diags.str());
  CHECK(c->name == "lab");
  const auto& a = c->hosts[0];
  CHECK(a.cpus == 16);
  CHECK(a.memory == 64ull << 30);
  REQUIRE(a.gpus.size() == 2);
  CHECK(a.gpus[0].memory == 80ull << 30);
  CHECK(a.gpus[0].name == "H100");
  CHECK(a.gpus[1].memory == 40ull << 30);
  REQUIRE(a.label("zone"));
  CHECK(*a.label("zone") == "paris");
  CHECK(a.label("gpu") == nullptr);
  const auto& b = c->hosts[1];
  CHECK(b.cpus == 1);     // default
  CHECK(b.memory == 0);   // unknown
  CHECK(b.gpus.size() == 4);
  CHECK(b.gpus[3].memory == 0);
  REQUIRE(c->curve);
  REQUIRE(c->curve->server_key_file);
  CHECK(c->curve->server_key_file->path == "keys/server.key");
  CHECK(c->curve->server_key_file->resolved == "conf/keys/server.key");
  CHECK(c->curve->client_key_file->resolved == "/etc/loom/client.key");
  CHECK(c->curve->server_key_file->where.str() == "conf/lab.yaml:13:28");
}

TEST_CASE("a host's own public key file and the largest message size are read; a tiny size is refused" *
          doctest::timeout(10)) {
  graph::diagnostics diags;
  auto c = load_cluster_text("hosts:\n  - {name: a, address: tcp://x:1, public_key: keys/a.pub}\n"
                             "  - {name: b, address: tcp://y:1}\nmax_message_size: 1MiB\n",
                             "conf/c.yaml", diags);
  REQUIRE_MESSAGE(c, diags.str());
  REQUIRE(c->hosts[0].public_key);
  CHECK(c->hosts[0].public_key->resolved == "conf/keys/a.pub");
  CHECK_FALSE(c->hosts[1].public_key);
  CHECK(c->max_message_bytes == 1u << 20);
  graph::diagnostics d2;
  CHECK(load_cluster_text("hosts:\n  - {name: a, address: tcp://x:1}\n", "c.yaml", d2)->max_message_bytes ==
        64u << 20);
  graph::diagnostics d3;
  CHECK_FALSE(load_cluster_text("hosts:\n  - {name: a, address: tcp://x:1, public_key: ''}\nmax_message_size: 100\n",
                                "c.yaml", d3));
  CHECK(d3.str().find("c.yaml:3:19: error: `max_message_size` of 100 B is too small") != std::string::npos);
  INFO(d3.str());
  CHECK(d3.str().find("error: `public_key` of host `a` is empty") != std::string::npos);
}

TEST_CASE("a missing cluster file is one error naming the file" * doctest::timeout(10)) {
  graph::diagnostics diags;
  CHECK_FALSE(load_cluster_file("no/such/cluster.yaml", diags));
  CHECK(diags.str() == "no/such/cluster.yaml: error: cannot read: No such file or directory\n");
}

TEST_CASE("every error of a cluster file is reported in one pass, with a did-you-mean hint" * doctest::timeout(10)) {
  graph::diagnostics diags;
  auto c = load_cluster_text("hosts:\n  - {name: a, address: tcp://x:1, cpu: 4}\n  - {name: a, address: tcp://x:2}\n",
                             "c.yaml", diags);
  CHECK_FALSE(c);
  CHECK(diags.error_count() == 2);
  std::string out = diags.str();
  CHECK(out.find("c.yaml:2:35: error: unknown host field `cpu`\n  hint: did you mean `cpus`?") != std::string::npos);
  CHECK(out.find("c.yaml:3:12: error: duplicate host name `a`") != std::string::npos);
}

TEST_CASE("sizes print in binary units" * doctest::timeout(10)) {
  CHECK(size_text(80ull << 30) == "80 GiB");
  CHECK(size_text(512ull << 20) == "512 MiB");
  CHECK(size_text(100) == "100 B");
}
