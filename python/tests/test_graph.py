"""Graphs from Python: the builder, >>, YAML both ways, and errors with their place."""
import pytest

import loom


def test_builder_and_rshift_make_the_graph_yaml_makes():
    g = loom.Graph("counted", description="three nodes")
    src = g.node("src", "source.sequence", count=10)
    fwd = g.node("fwd", "flow.forward")
    out = g.node("out", "sink.count", expect=10)
    src >> fwd >> out
    assert [n["name"] for n in g.nodes] == ["src", "fwd", "out"]
    assert [(e["from"], e["to"]) for e in g.edges] == [("src", "fwd"), ("fwd", "out")]
    assert g.nodes[0]["params"] == {"count": 10}
    again = loom.loads(g.to_yaml(), name="again.yaml")
    assert again.nodes[0]["params"]["count"] == 10
    assert [(e["from"], e["to"]) for e in again.edges] == [("src", "fwd"), ("fwd", "out")]
    g.validate()
    assert loom.run(g, threads=2)["out"].in_ == 10


def test_edge_with_ports_and_chain():
    g = loom.Graph("ports")
    g.node("src", "source.sequence", count=3)
    g.node("out", "sink.count")
    g.edge("src.out", "out.in")
    g2 = loom.Graph("chain")
    g2.node("a", "source.sequence", count=3)
    g2.node("b", "flow.forward")
    g2.node("c", "sink.count")
    g2.chain("a", "b", "c")
    assert len(g2.edges) == 2
    assert loom.run(g2)["c"].in_ == 3


def test_an_invalid_graph_names_this_file_and_line():
    g = loom.Graph("bad")
    g.node("src", "source.sequence", count="many")  # the line the error names
    g.node("out", "sink.nothing")
    g.edge("src", "out")
    with pytest.raises(loom.GraphError) as e:
        g.validate()
    text = str(e.value)
    assert "test_graph.py:" in text
    assert "sink.nothing" in text
    assert "count" in text
    assert any(d["level"] == "error" and d["file"].endswith("test_graph.py") for d in e.value.diagnostics)
    with pytest.raises(loom.GraphError):
        loom.run(g)


def test_load_with_overrides_and_errors_with_file_line_column(tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text("graph: g\nnodes:\n  src: {kind: source.sequence, params: {count: 3}}\n"
                    "  out: {kind: sink.count}\nedges:\n  - src -> out\n")
    g = loom.load(good, set={"src.count": 7})
    assert g.nodes[0]["params"]["count"] == 7
    assert loom.run(g)["out"].in_ == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("graph: g\nnodes:\n  src: {kind: source.sequence, params: {count: 3}}\n"
                   "  out: {kind: sink.count}\nedges:\n  - src -> nowhere\n")
    with pytest.raises(loom.GraphError) as e:
        loom.load(bad)
    assert f"{bad}:6:" in str(e.value)
    with pytest.raises(loom.GraphError):
        loom.load(good, set={"nosuch.count": 1})


def test_a_graph_file_runs_by_path(source_dir):
    report = loom.run(str(source_dir / "configs" / "serve_echo.yaml"))
    assert report.ok
    assert report["reply"].in_ == 1
    assert loom.run(source_dir / "configs" / "serve_echo.yaml").ok  # a pathlib.Path too


def test_duplicate_node_and_bad_kind_argument():
    g = loom.Graph("dup")
    g.node("a", "source.sequence")
    with pytest.raises(ValueError):
        g.node("a", "flow.forward")
    with pytest.raises(TypeError):
        g.node("b", 42)
