"""loom.Graph, built in Python: nodes, ports and edges, each located at the user's line that added it.

The same graph value the YAML loader makes (docs/graph-format.md); loom/__init__.py loads, validates and
runs it. Everything here is re-exported by the package (loom.Graph, loom.Node, loom.Port).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from . import _loom
from ._loom import GraphError

# Frames of these modules are loom's own: a node's or an edge's location is the first frame outside them.
_OWN_MODULES = ("loom", __name__)


def _caller(depth: int = 2):
    """The file and line of the user's call `depth` frames up (the graph's locations point there)."""
    f = sys._getframe(depth)
    while f is not None and f.f_globals.get("__name__") in _OWN_MODULES:
        f = f.f_back
    if f is None:
        return "<python>", 0
    return f.f_code.co_filename, f.f_lineno


def _set_list(set: Optional[Union[Mapping[str, Any], Sequence[str]]]) -> list:
    """`set` as `loom run --set` takes it: {"src.count": 5} -> ["src.count=5"]."""
    if set is None:
        return []
    if isinstance(set, Mapping):
        import json

        out = []
        for k, v in set.items():
            if isinstance(v, str):
                text = v
            elif isinstance(v, bool):
                text = "true" if v else "false"
            else:
                text = json.dumps(v)
            out.append(f"{k}={text}")
        return out
    return [str(s) for s in set]


class Port:
    """One port of a node, `node["tasks"]`: an edge endpoint ("node.port")."""

    __slots__ = ("node", "name")

    def __init__(self, node: "Node", name: str):
        self.node = node
        self.name = name

    def __str__(self) -> str:
        return f"{self.node.name}.{self.name}"

    def __repr__(self) -> str:
        return f"<loom.Port {self}>"

    def __rshift__(self, other):
        file, line = _caller()
        self.node.graph._edge(self, other, None, file, line)
        return other


class Node:
    """A node of a Graph (what Graph.node returns). `a >> b` adds the edge a -> b and returns b, so
    `a >> b >> c` chains; `a["port"]` names one of a's ports."""

    __slots__ = ("graph", "name", "kind")

    def __init__(self, graph: "Graph", name: str, kind: str):
        self.graph = graph
        self.name = name
        self.kind = kind

    def __getitem__(self, port: str) -> Port:
        return Port(self, port)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<loom.Node {self.name} ({self.kind})>"

    def __rshift__(self, other):
        file, line = _caller()
        self.graph._edge(self, other, None, file, line)
        return other


Endpoint = Union[str, Node, Port]


class Graph:
    """A graph: nodes of kinds, joined by edges; the same value the YAML loader makes (docs/graph-format.md).

    g = loom.Graph("name"); g.node("src", "source.sequence", count=10); g.edge("src", "out").
    Each node and edge is located at the Python line that added it, so validation errors point there.
    """

    def __init__(self, name: str, *, description: Optional[str] = None, default_capacity: Optional[int] = None):
        file, line = _caller()
        self._data = _loom.GraphData(name, file, line)
        if description is not None:
            self._data.description = description
        if default_capacity is not None:
            self._data.default_capacity = int(default_capacity)

    @classmethod
    def _wrap(cls, data: "_loom.GraphData") -> "Graph":
        g = cls.__new__(cls)
        g._data = data
        return g

    @property
    def name(self) -> str:
        return self._data.name

    @property
    def description(self) -> str:
        return self._data.description

    @property
    def default_capacity(self) -> int:
        return self._data.default_capacity

    def node(self, name: str, kind: Union[str, Callable], *, params: Optional[Mapping[str, Any]] = None,
             replicas: Optional[int] = None, restarts: Optional[int] = None, tools: Iterable[Union[str, Node]] = (),
             on_host: Optional[str] = None, cpus: Optional[float] = None, gpus: Optional[int] = None,
             **kwparams: Any) -> Node:
        """Adds node `name` of `kind` (a kind's name, or a function decorated with @loom.kind / @loom.tool).
        Keyword arguments are the node's params (`params=` for names that clash with the ones here);
        `tools` names the tool nodes an agent may call; `restarts` how often a failure restarts the node."""
        kind_name = _kind_name(kind)
        all_params = dict(params or {})
        all_params.update(kwparams)
        file, line = _caller()
        self._data.add_node(name, kind_name, all_params, file, line, replicas, restarts, [str(t) for t in tools],
                            on_host, cpus, gpus)
        return Node(self, name, kind_name)

    def edge(self, src: Endpoint, dst: Endpoint, *, capacity: Optional[int] = None) -> "Graph":
        """Adds the edge src -> dst; each end is "node", "node.port", a Node or a Port."""
        file, line = _caller()
        self._edge(src, dst, capacity, file, line)
        return self

    def chain(self, *endpoints: Endpoint) -> "Graph":
        """Adds an edge between each consecutive pair: g.chain("src", "fwd", "out")."""
        file, line = _caller()
        for a, b in zip(endpoints, endpoints[1:]):
            self._edge(a, b, None, file, line)
        return self

    def _edge(self, src, dst, capacity, file, line):
        if isinstance(src, (list, tuple)):
            for s in src:
                self._edge(s, dst, capacity, file, line)
            return
        if isinstance(dst, (list, tuple)):
            for d in dst:
                self._edge(src, d, capacity, file, line)
            return
        self._data.add_edge(str(src), str(dst), capacity, file, line)

    def __getitem__(self, name: str) -> Node:
        for n in self._data.nodes():
            if n["name"] == name:
                return Node(self, name, n["kind"])
        raise KeyError(f"graph `{self.name}` has no node `{name}`")

    def __contains__(self, name: str) -> bool:
        return self._data.has_node(name)

    @property
    def nodes(self) -> list:
        """Each node as a dict: name, kind, params, replicas, restarts, tools, where (file:line)."""
        return self._data.nodes()

    @property
    def edges(self) -> list:
        """Each edge as a dict: from, to, capacity, where."""
        return self._data.edges()

    def to_yaml(self) -> str:
        """The graph as a graph file (loom.loads(g.to_yaml()) gives the same graph back)."""
        return self._data.to_yaml()

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_yaml())

    def validate(self, *, threads: int = 0) -> list:
        """Checks the graph against the kinds this process knows; raises GraphError listing every mistake
        (file:line: message); returns the warnings (as text)."""
        from . import _runtime  # the package's runtime (loom/__init__.py), made on first use

        diags = _runtime(threads).validate(self._data)
        errors = [d for d in diags if d["level"] == "error"]
        if errors:
            e = GraphError(f"graph `{self.name}` is not valid:\n" + "\n".join(d["text"] for d in errors))
            e.diagnostics = diags
            raise e
        return [d["text"] for d in diags]

    def copy(self) -> "Graph":
        return Graph._wrap(self._data.copy())

    def __eq__(self, other) -> bool:
        return isinstance(other, Graph) and self._data == other._data

    def __repr__(self) -> str:
        return f"<loom.Graph {self.name}: {len(self.nodes)} nodes, {len(self.edges)} edges>"


def _kind_name(kind) -> str:
    if isinstance(kind, str):
        return kind
    name = getattr(kind, "loom_kind", None)
    if name is None:
        raise TypeError(f"{kind!r} is neither a kind's name nor a function decorated with @loom.kind or @loom.tool")
    return name
