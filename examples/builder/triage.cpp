// examples/builder/triage.cpp: build a graph in C++, validate it, run it in this process, print the summary.
// Run from the repository root: build/bin/loom_example_triage
#include "examples/builder/triage_graph.hpp"
#include "examples/run_example.hpp"

int main() { return loom::examples::run_example(loom::examples::triage_graph()); }
