// tests/observe/receiver.hpp: otlp_receiver.py in the background (an OTLP/HTTP JSON receiver and a
// chat-completions server on 127.0.0.1), its scratch folder, and what it collected.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace loom::test::observe {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class receiver {
 public:
  explicit receiver(const std::string& name)
      : dir_(fs::temp_directory_path() / ("loom-trace-" + name + "-" + std::to_string(getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pid_ = fork();
    if (pid_ == 0) {
      std::string py = LOOM_PYTHON, script = std::string(LOOM_SOURCE_DIR) + "/tests/observe/otlp_receiver.py",
                  out = dir_.string();
      char* argv[] = {py.data(), script.data(), out.data(), nullptr};
      execv(argv[0], argv);
      _exit(127);
    }
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(dir_ / "ports") && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::istringstream ports(slurp(dir_ / "ports"));
    ports >> otlp_port_ >> chat_port_;
    REQUIRE_MESSAGE(otlp_port_ > 0, "otlp_receiver.py did not start");
  }
  ~receiver() {
    std::ofstream(dir_ / "stop") << "";
    if (pid_ > 0) {
      auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (waitpid(pid_, nullptr, WNOHANG) != pid_) {
        if (std::chrono::steady_clock::now() > end) {
          kill(pid_, SIGKILL);
          waitpid(pid_, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    fs::remove_all(dir_);
  }
  const fs::path& dir() const { return dir_; }
  std::string otlp_url() const { return "http://127.0.0.1:" + std::to_string(otlp_port_); }
  std::string chat_url() const { return "http://127.0.0.1:" + std::to_string(chat_port_) + "/v1"; }

  // Every span of every OTLP export received, with its resource's host.name as "host.name".
  std::vector<nlohmann::json> spans() const {
    std::vector<nlohmann::json> out;
    for (int i = 1; fs::exists(dir_ / ("traces-" + std::to_string(i) + ".json")); ++i) {
      auto doc = nlohmann::json::parse(slurp(dir_ / ("traces-" + std::to_string(i) + ".json")));
      for (const auto& rs : doc.at("resourceSpans")) {
        std::string host;
        for (const auto& a : rs.at("resource").at("attributes"))
          if (a.at("key") == "host.name") host = a.at("value").at("stringValue");
        for (const auto& ss : rs.at("scopeSpans"))
          for (auto s : ss.at("spans")) {
            s["host.name"] = host;
            out.push_back(std::move(s));
          }
      }
    }
    return out;
  }
  // The traceparent headers the chat server received, one per request ("-" when there was none).
  std::vector<std::string> traceparents() const {
    std::vector<std::string> out;
    std::istringstream in(slurp(dir_ / "traceparents.txt"));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int otlp_port_ = 0, chat_port_ = 0;
};

// A span's attribute value as text ("" when absent).
inline std::string attribute(const nlohmann::json& span, const std::string& key) {
  for (const auto& a : span.value("attributes", nlohmann::json::array()))
    if (a.at("key") == key) {
      const auto& v = a.at("value");
      if (v.contains("stringValue")) return v["stringValue"];
      if (v.contains("intValue")) return v["intValue"];
      return v.dump();
    }
  return "";
}

// How many of `spans` have no parent (the roots). Every other span's parent must be one of them (by_id:
// the spans by their id); the test fails naming a span whose parent is not.
inline int count_roots(const std::vector<nlohmann::json>& spans, const std::map<std::string, nlohmann::json>& by_id) {
  int roots = 0;
  for (const auto& s : spans) {
    if (!s.contains("parentSpanId")) {
      ++roots;
      continue;
    }
    CHECK_MESSAGE(by_id.count(s.at("parentSpanId")) == 1, s.dump());
  }
  return roots;
}

}  // namespace loom::test::observe
