// cli/load.cpp: the registry and graph loading shared by the subcommands.
#include "cli/load.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "loom/actors/builtins.hpp"
#include "loom/embed/detail/program_io.hpp"
#include "loom/graph/load.hpp"
#include "loom/graph/validate.hpp"

namespace loom::cli {
namespace {

std::atomic<int> sigint_count{0};

void on_sigint(int) {
  if (sigint_count.fetch_add(1) >= 1) std::_Exit(interrupted);  // a second ^C: leave now
}

}  // namespace

void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::atomic<bool> hangup{false};

void install_sighup() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { hangup = true; };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, nullptr);
}

bool interrupted_by_user() { return sigint_count.load() > 0 || hangup.load(); }


void print_error(const std::string& text) { std::fprintf(stderr, "loom: error: %s\n", text.c_str()); }

std::optional<registry> make_registry(const common_options& common) {
  registry r;
  actors::register_builtins(r);
  // A program's doors (docs/embedding.md): `loom validate` and `loom inspect` know them; a run of them from
  // the command line fails at start, saying they need a program (runtime::start).
  r.add(embed::unbound_input_kind());
  r.add(embed::unbound_output_kind());
  for (const auto& path : common.plugins) {
    try {
      load_plugin(r, path);
    } catch (const std::exception& e) {
      print_error(e.what());
      return std::nullopt;
    }
  }
  return r;
}

void print_diagnostics(const graph::diagnostics& diags, const std::string& file) {
  if (!diags.all().empty()) std::fprintf(stderr, "%s", diags.str().c_str());
  if (diags.error_count() > 1) std::fprintf(stderr, "%s: %zu errors\n", file.c_str(), diags.error_count());
}

std::optional<graph::graph> load(const std::string& file, const registry& kinds, const std::vector<std::string>& sets) {
  graph::diagnostics diags;
  auto g = graph::load_graph_file(file, diags);
  if (g) {
    for (const auto& s : sets) graph::apply_override(*g, s, diags);
    graph::validate(*g, kinds, diags);
  }
  print_diagnostics(diags, file);
  if (!g || diags.has_errors()) return std::nullopt;
  graph::apply_defaults(*g, kinds);
  return g;
}

}  // namespace loom::cli
