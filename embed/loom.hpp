// loom/loom.hpp: everything a program that embeds loom uses (docs/embedding.md), in one include:
//   loom::runtime (embed/runtime.hpp)      runs graphs: to the end, fed while running, across hosts, served
//   loom::running, input<T>, output<T>     a running graph's program.input / program.output handles
//   loom::graph::builder (graph/builder.hpp) builds a graph in C++; runtime::load reads one from YAML
//   loom::node, context, kind_def           writing a kind of one's own (runtime/node.hpp, runtime/registry.hpp)
//   loom::value                             what travels on edges (runtime/value.hpp); loom::convert<T> maps types
//   loom::version()                         the library's version (loom/version.hpp)
#pragma once

#include "loom/embed/convert.hpp"
#include "loom/embed/running.hpp"
#include "loom/embed/runtime.hpp"
#include "loom/graph/builder.hpp"
#include "loom/graph/diagnostics.hpp"
#include "loom/graph/graph.hpp"
#include "loom/graph/kind_spec.hpp"
#include "loom/runtime/node.hpp"
#include "loom/runtime/params.hpp"
#include "loom/runtime/registry.hpp"
#include "loom/runtime/run_report.hpp"
#include "loom/runtime/tensor.hpp"
#include "loom/runtime/value.hpp"
#include "loom/version.hpp"
