"""Kinds and tools written in Python: ports and params from the signature, generators, state, To, tools."""
from typing import Annotated

import pytest

import loom


@loom.kind("test.upper")
def upper(text: str, *, suffix: str = "!") -> str:
    """Upper-cases each string."""
    return text.upper() + suffix


@loom.kind("test.split")
def split(text: str):
    """Emits each word: a generator emits several values."""
    for w in text.split():
        yield w


@loom.kind("test.evens", outputs=["even", "odd"])
def evens(x: int):
    return loom.To("even" if x % 2 == 0 else "odd", x)


@loom.kind("test.count_from")
def count_from(*, n: int = 3, start: int = 0):
    """A source: no input, its generator's values."""
    yield from range(start, start + n)


@loom.kind("test.running_sum")
class RunningSum:
    """Emits the sum so far; its state survives a restart (checkpoints)."""

    failed = False  # the first instance fails once at fail_at
    restores = []

    def __init__(self, *, fail_at: int = -1):
        self.total = 0
        self.fail_at = fail_at

    def __call__(self, x: int) -> int:
        if x == self.fail_at and not RunningSum.failed:
            RunningSum.failed = True
            raise RuntimeError("once")
        self.total += x
        return self.total

    def finish(self):
        yield {"total": self.total}

    def state(self):
        return self.total

    def restore(self, state):
        RunningSum.restores.append(state)
        self.total = state


collected = []


@loom.kind("test.collect")
def collect(x) -> None:
    collected.append(x)


def run_values(values, *kinds, **params):
    """Pushes `values` through the chain of `kinds` and returns what comes out."""
    g = loom.Graph("chain")
    prev = g.node("in", "program.input")
    for i, k in enumerate(kinds):
        prev = prev >> g.node(f"k{i}", k, **(params if i == 0 else {}))
    prev >> g.node("out", "program.output")
    with loom.start(g, threads=2) as run:
        for v in values:
            run.push("in", v)
        run.close()
        out = list(run.values("out"))
        assert run.wait().ok
    return out


def test_a_function_with_a_param():
    assert run_values(["a", "b"], upper, suffix="?") == ["A?", "B?"]
    assert run_values(["a"], upper) == ["A!"]


def test_a_python_kind_in_a_loaded_graph_file():
    g = loom.loads("graph: y\nnodes:\n  in: {kind: program.input}\n  up: {kind: test.upper, params: {suffix: '.'}}\n"
                   "  out: {kind: program.output}\nedges:\n  - in -> up -> out\n", name="y.yaml")
    with loom.start(g) as run:
        run.push("in", "x")
        assert run.take("out", timeout=30) == "X."


def test_the_spec_comes_from_the_signature():
    g = loom.Graph("typed")
    g.node("in", "program.input") >> g.node("u", "test.upper", suffix=3) >> g.node("out", "program.output")
    with pytest.raises(loom.GraphError) as e:
        g.validate()
    assert "suffix" in str(e.value)


def test_a_generator_emits_several_values():
    assert run_values(["a b c", "d"], split) == ["a", "b", "c", "d"]


def test_to_sends_to_a_named_port():
    g = loom.Graph("to")
    g.node("src", "source.sequence", count=10) >> g.node("e", evens)
    e = g["e"]
    e["even"] >> g.node("ev", "sink.count")
    g.edge("e.odd", g.node("od", "sink.count"))
    report = loom.run(g)
    assert report["ev"].in_ == 5 and report["od"].in_ == 5


def test_a_source_and_a_sink_in_python():
    collected.clear()
    g = loom.Graph("py_ends")
    g.node("src", count_from, n=4, start=10) >> g.node("sink", collect)
    loom.run(g)
    assert collected == [10, 11, 12, 13]


def test_a_class_keeps_state_finishes_and_restores_its_checkpoint():
    assert run_values([1, 2, 3], RunningSum) == [1, 3, 6, {"total": 6}]
    # 1 and 2 are handled (and taken) before 3 fails: the fresh instance gets their checkpoint, 3.
    RunningSum.failed, RunningSum.restores = False, []
    g = loom.Graph("restore")
    g.node("in", "program.input") >> g.node("s", RunningSum, fail_at=3, restarts=1) >> \
        g.node("out", "program.output")
    with loom.start(g) as run:
        run.push("in", 1)
        run.push("in", 2)
        assert [run.take("out", timeout=30), run.take("out", timeout=30)] == [1, 3]
        for x in (3, 4, 5):
            run.push("in", x)
        run.close()
        out = list(run.values("out"))
        report = run.wait()
    assert report["s"].restarts == 1
    assert RunningSum.restores == [3]
    assert out == [6, 10, 15, {"total": 15}]


def test_returning_a_value_from_a_sink_fails_clearly():
    @loom.kind("test.bad_sink", outputs=[])
    def bad_sink(x):
        return x

    g = loom.Graph("bad")
    g.node("src", "source.sequence", count=1) >> g.node("s", bad_sink)
    report = loom.run(g, check=False)
    assert "no output ports" in report.error


@loom.tool("test.weather")
def weather(city: Annotated[str, "the city's name"], days: int = 1) -> dict:
    """The weather forecast for a city."""
    return {"city": city, "temperature": 21 + days}


def test_a_tool_schema_from_type_hints():
    s = loom.tool_schema(weather, node="wx")
    f = s["function"]
    assert f["name"] == "wx"
    assert f["description"] == "The weather forecast for a city."
    props = f["parameters"]["properties"]
    assert props["city"]["type"] == "string" and props["city"]["description"] == "the city's name"
    assert props["days"]["type"] == "integer"
    assert f["parameters"]["required"] == ["city"]


def test_a_python_tool_called_by_a_scripted_agent():
    g = loom.Graph("agent")
    g.node("task", "source.value", value="weather in Paris")
    g.node("bot", "agent.llm", tools=["wx"], rules=[
        {"when": "first", "call": {"tool": "wx", "arguments": {"city": "Paris", "days": 2}}},
        {"when": "after_tool", "reply": "{{tool.wx.temperature}} degrees in {{tool.wx.city}}"},
    ])
    g.node("wx", weather)
    g.node("out", "program.output")
    g.chain("task", "bot", "out")
    with loom.start(g) as run:
        answer = run.take("out", timeout=60)
        assert run.wait().ok
    assert answer["text"] == "23 degrees in Paris"


def test_a_tool_error_reaches_the_agent():
    @loom.tool("test.broken")
    def broken(q: str) -> str:
        raise KeyError(q)

    g = loom.Graph("agent_err")
    g.node("task", "source.value", value="go")
    g.node("bot", "agent.llm", tools=["b"], rules=[
        {"when": "first", "call": {"tool": "b", "arguments": {"q": "nothing"}}},
        {"when": "after_tool", "reply": "saw {{tool.b}}"},
    ])
    g.node("b", broken)
    g.node("out", "program.output")
    g.chain("task", "bot", "out")
    with loom.start(g) as run:
        answer = run.take("out", timeout=60)
    assert "KeyError" in answer["text"] and "nothing" in answer["text"]


@loom.kind("test.tag")
def tag(left, right, *, sep: str = ":"):
    """Two inputs: each call gets its port's value, the other None."""
    return f"L{sep}{left}" if right is None else f"R{sep}{right}"


@loom.kind("test.countdown")
class Countdown:
    """A class source: its iterator's values."""

    def __init__(self, *, n: int = 3):
        self.n = n

    def __iter__(self):
        return iter(range(self.n, 0, -1))


def test_two_inputs_named_after_the_parameters():
    g = loom.Graph("two")
    g.node("a", "source.value", value="x")
    g.node("b", "source.value", value="y")
    g.node("t", tag, sep="=")
    g.node("out", "program.output")
    g.edge("a", "t.left")
    g.edge("b", "t.right")
    g.edge("t", "out")
    with loom.start(g) as run:
        got = sorted(run.values("out"))
        assert run.wait().ok
    assert got == ["L=x", "R=y"]


def test_a_class_source():
    g = loom.Graph("class_source")
    g.node("src", Countdown, n=4) >> g.node("out", "program.output")
    with loom.start(g) as run:
        assert list(run.values("out")) == [4, 3, 2, 1]
