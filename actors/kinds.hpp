// actors/kinds.hpp: internal to loom_actors. One function per built-in kind, each defined in the kind's own
// source file (actors/<family>/<name>.cpp), returning its spec and factory; builtins.cpp adds them.
#pragma once

#include "loom/runtime/registry.hpp"

namespace loom::actors {

// source.*
kind_def sequence_kind();
kind_def value_kind();
kind_def blob_kind();
kind_def file_source_kind();

// flow.*
kind_def forward_kind();
kind_def batch_kind();
kind_def gather_kind();
kind_def router_kind();
kind_def throttle_kind();
kind_def jq_kind();    // flow.jq
kind_def call_kind();  // flow.call
kind_def vote_kind();  // flow.vote
kind_def approve_kind();  // human.approve

// sink.*
kind_def file_sink_kind();
kind_def stdout_kind();
kind_def count_kind();
kind_def llm_agent_kind();  // agent.llm

// tool.*
kind_def calculator_kind();
kind_def retrieve_kind();
kind_def monte_carlo_kind();
kind_def mcp_kind();  // tool.mcp

// kernel.*
kind_def gemm_kind();

}  // namespace loom::actors
