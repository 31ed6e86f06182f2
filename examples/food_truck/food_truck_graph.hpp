// examples/food_truck/food_truck_graph.hpp: configs/food_truck.yaml, the flagship graph, written with the C++
// builder. A test checks that the two give the same graph (tests/runtime/builder_twin_test.cpp).
//
//   prompt -> planner.tasks -> route -+-> market ----+
//                                     +-> design ----+
//                                     +-> finance ---+-> team (gather 5) -> writer -> package
//                                     +-> ops -------+                              (out/launch_package.md)
//                                     +-> marketing -+
//   tools: knowledge (tool.retrieve), forecast (tool.monte_carlo, a GPU kernel with a CPU path), calc
//
// Every agent uses the scripted backend (its `rules`); the numbers come from the real tools. The strings below
// are the YAML's scalars as loaded: the folded (`>-`) blocks are one line, the literal (`|-`) blocks keep
// their newlines.
#pragma once

#include "loom/graph/builder.hpp"

namespace loom::examples {

inline graph::graph food_truck_graph() {
  using graph::config_list;
  using graph::config_map;
  graph::builder b("food-truck");
  b.base_dir("configs");  // paths as configs/food_truck.yaml writes them, from the repository root
  b.description("Plan a food truck launch in Paris from one prompt.");

  b.node("prompt", "source.value").param("value", "Help me start a food truck in Paris");

  b.node("planner", "agent.llm")
      .param("role", "planner")
      .param("system",
             "You lead a launch team. Break the goal into one task for each of: market, design, finance, ops, "
             "marketing. Answer only with JSON: {\"tasks\": [{\"role\": \"...\", \"task\": \"...\"}]}.")
      .param("rules",
             config_list{config_map{
                 {"reply",
                  "{\"tasks\": [ "
                  "{\"role\": \"market\", \"task\": \"Where can a food truck trade in Paris, and what sells there? "
                  "Goal: {{input}}\"}, "
                  "{\"role\": \"design\", \"task\": \"Design the concept and menu. Goal: {{input}}\"}, "
                  "{\"role\": \"finance\", \"task\": \"Forecast the first year's revenue and profit. Goal: "
                  "{{input}}\"}, "
                  "{\"role\": \"ops\", \"task\": \"Plan permits, hygiene and the daily break-even. Goal: "
                  "{{input}}\"}, "
                  "{\"role\": \"marketing\", \"task\": \"Plan the launch marketing. Goal: {{input}}\"}]}"}}});

  b.node("route", "flow.router")
      .param("field", "role")
      .param("routes", config_map{{"market", "market"},
                                  {"design", "design"},
                                  {"finance", "finance"},
                                  {"ops", "ops"},
                                  {"marketing", "marketing"}})
      .param("unmatched", "fail");  // a task for a role no agent has is an error

  b.node("market", "agent.llm")
      .tool("knowledge")
      .param("role", "market researcher")
      .param("system", "You research where and to whom a street-food business sells. Use the knowledge base.")
      .param("rules",
             config_list{
                 config_map{{"when", "first"},
                            {"call", config_map{{"tool", "knowledge"},
                                                {"arguments", config_map{{"query",
                                                                          "markets locations pitches Paris lunch "
                                                                          "crowds"}}}}}},
                 config_map{{"when", "after_tool"},
                            {"reply",
                             "Where to trade: {{tool.knowledge.passages.0.text}} "
                             "(source: {{tool.knowledge.passages.0.source}})\n"
                             "\n"
                             "Also consider: {{tool.knowledge.passages.1.text}} "
                             "(source: {{tool.knowledge.passages.1.source}})"}}});

  b.node("design", "agent.llm")
      .tool("knowledge")
      .param("role", "concept designer")
      .param("system", "You design a street-food concept and a short menu with prices.")
      .param("rules",
             config_list{
                 config_map{{"when", "first"},
                            {"call", config_map{{"tool", "knowledge"},
                                                {"arguments", config_map{{"query", "menu dishes prices concept"}}}}}},
                 config_map{{"when", "after_tool"},
                            {"reply",
                             "Concept and menu: {{tool.knowledge.passages.0.text}} "
                             "(source: {{tool.knowledge.passages.0.source}})"}}});

  b.node("finance", "agent.llm")
      .tool("forecast")
      .param("role", "financial planner")
      .param("system", "You forecast revenue and profit with the Monte Carlo tool and explain the range.")
      .param("rules",
             config_list{
                 config_map{{"when", "first"},
                            {"call", config_map{{"tool", "forecast"},
                                                {"arguments", config_map{{"customers_per_day", 120},
                                                                         {"customers_sd", 30},
                                                                         {"avg_ticket", 12.5},
                                                                         {"ticket_sd", 2.5},
                                                                         {"fixed_costs_per_month", 6000},
                                                                         {"cost_of_goods", 0.32},
                                                                         {"days", 300},
                                                                         {"samples", 200000},
                                                                         {"seed", 7}}}}}},
                 config_map{{"when", "after_tool"},
                            {"reply",
                             "First-year forecast ({{tool.forecast.samples}} Monte Carlo runs on "
                             "{{tool.forecast.device}}; 300 trading days, 120 +/- 30 customers a day, "
                             "12.50 EUR +/- 2.50 a ticket):\n"
                             "- revenue: P10 {{tool.forecast.revenue.p10|int}} EUR, "
                             "median {{tool.forecast.revenue.p50|int}} EUR, "
                             "P90 {{tool.forecast.revenue.p90|int}} EUR\n"
                             "- profit after 32% cost of goods and 6000 EUR a month fixed: "
                             "P10 {{tool.forecast.profit.p10|int}} EUR, "
                             "median {{tool.forecast.profit.p50|int}} EUR, "
                             "P90 {{tool.forecast.profit.p90|int}} EUR\n"
                             "- probability of a loss: {{tool.forecast.probability_of_loss}}"}}});

  b.node("ops", "agent.llm")
      .tool("calc")
      .param("role", "operations planner")
      .param("system", "You plan permits and daily operations, and compute the break-even with the calculator.")
      .param("rules",
             config_list{
                 config_map{{"when", "first"},
                            {"call", config_map{{"tool", "calc"},
                                                {"arguments",
                                                 config_map{{"expression", "6000 / (12.5 * (1 - 0.32)) / 25"}}}}}},
                 config_map{{"when", "after_tool"},
                            {"reply",
                             "Break-even: {{tool.calc.result|int}} customers a day over 25 trading days a month "
                             "cover 6000 EUR of fixed costs (12.50 EUR tickets, 32% cost of goods). Before the "
                             "first service: a pitch authorisation from the city or the market's organiser, HACCP "
                             "hygiene training, and a vehicle fitted to food-safety rules."}}});

  b.node("marketing", "agent.llm")
      .tool("knowledge")
      .param("role", "marketing specialist")
      .param("system", "You plan the launch marketing for a street-food business.")
      .param("rules",
             config_list{
                 config_map{{"when", "first"},
                            {"call", config_map{{"tool", "knowledge"},
                                                {"arguments",
                                                 config_map{{"query", "marketing social media launch loyalty"}}}}}},
                 config_map{{"when", "after_tool"},
                            {"reply",
                             "Launch plan: {{tool.knowledge.passages.0.text}} "
                             "(source: {{tool.knowledge.passages.0.source}})"}}});

  b.node("team", "flow.gather").param("count", 5).param("sort_by", "role");

  b.node("writer", "agent.llm")
      .param("role", "writer")
      .param("system", "You gather the team's work into one launch package in markdown.")
      .param("rules", config_list{config_map{{"reply",
                                              "# Food truck launch package\n"
                                              "\n"
                                              "Prepared by the loom food-truck graph from the team's work below.\n"
                                              "\n"
                                              "{{input}}"}}});

  b.node("package", "sink.file")
      .param("path", "../out/launch_package.md")
      .param("format", "text")
      .param("field", "text");

  b.node("knowledge", "tool.retrieve").param("corpus", "data/food_truck").param("top_k", 2);
  b.node("forecast", "tool.monte_carlo");
  b.node("calc", "tool.calculator");

  b.edge("prompt", "planner");
  b.edge("planner.tasks", "route");
  b.edge("route.market", "market");
  b.edge("route.design", "design");
  b.edge("route.finance", "finance");
  b.edge("route.ops", "ops");
  b.edge("route.marketing", "marketing");
  for (auto from : {"market", "design", "finance", "ops", "marketing"}) b.edge(from, "team");
  b.chain({"team", "writer", "package"});
  return b.build();
}

}  // namespace loom::examples
