"""loom from Python: build, load, run and extend loom dataflow graphs (docs/python.md).

The runtime stays native (C++: scheduling, credits, transport); Python composes graphs, runs them, feeds
them and writes leaf kinds and tools::

    import loom

    @loom.kind("acme.upper")
    def upper(text: str, *, suffix: str = "!") -> str:
        return text.upper() + suffix

    g = loom.Graph("hello")
    words = g.node("words", "source.value", value="hello loom", repeat=3)
    up = g.node("up", upper, suffix="?")
    out = g.node("out", "sink.stdout")
    words >> up >> out
    report = loom.run(g, threads=2)
    print(report["out"].in_)          # 3

Runs release the GIL for their whole length; Ctrl-C (KeyboardInterrupt) stops a run and raises.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

from . import _loom
from ._graph import Endpoint, Graph, Node, Port, _kind_name, _set_list
from ._kinds import kind, tool, registered_kinds
from ._loom import GraphError, RunError, To

__all__ = [
    "Graph", "Node", "Port", "Report", "NodeStats", "Run", "Server", "Worker", "EndOfStream", "GraphError", "RunError", "To",
    "load", "loads", "run", "start", "run_cluster", "serve", "kind", "tool", "kinds", "tool_schema", "__version__",
]

for _public in (Graph, Node, Port):
    _public.__module__ = __name__  # loom.Graph, as users name it (help(), repr of the class)

__version__: str = _loom.version


class EndOfStream(Exception):
    """Raised by Run.take() once the run ended ok and every value of that output was taken."""


# -- runtimes ---------------------------------------------------------------------------------------------

_lock = threading.Lock()
_runtimes: dict = {}  # threads -> [loom::runtime, kinds generation it has]


def _runtime(threads: int = 0) -> "_loom.Runtime":
    """The process's runtime with `threads` scheduler threads (0: the machine's cores), made once and kept;
    every kind registered from Python is added to it before it is used."""
    from . import _kinds

    with _lock:
        entry = _runtimes.get(threads)
        if entry is None:
            entry = [_loom.Runtime(threads), -1]
            _runtimes[threads] = entry
        if entry[1] != _kinds.generation:
            for spec, make in _kinds.specs.values():
                entry[0].add_kind(spec, make)
            entry[1] = _kinds.generation
        return entry[0]


_cluster_runtimes: dict = {}  # threads -> a runtime with loom's kinds only


def _cluster_runtime(threads: int = 0) -> "_loom.Runtime":
    """A runtime without the kinds registered from Python, for run_cluster: a worker compares the driver's
    kinds with its own (`loom worker` has the built-ins), and Python kinds do not run on workers yet."""
    with _lock:
        if threads not in _cluster_runtimes:
            _cluster_runtimes[threads] = _loom.Runtime(threads)
        return _cluster_runtimes[threads]


_active = 0  # loom.run / run_cluster calls in progress, on any thread
_active_cv = threading.Condition()
_live_runs: "weakref.WeakSet[Run]" = weakref.WeakSet()  # loom.start's runs


_exiting = False  # set at exit: no new runs


class _counted:
    """Counts a blocking call in _active while it runs."""

    def __enter__(self):
        global _active
        with _active_cv:
            if _exiting:
                raise RuntimeError("loom: the interpreter is exiting: no new runs")
            _active += 1

    def __exit__(self, *exc):
        global _active
        with _active_cv:
            _active -= 1
            _active_cv.notify_all()


def _stop_all_runs(grace: float = 10.0) -> None:
    """At exit: stops every run still going and waits (up to `grace` seconds) for them to end, before the
    interpreter finalizes: a node thread still waiting for the GIL then would be ended by Python
    (pthread_exit) inside the runtime, which aborts the process."""
    global _exiting

    def interrupt_all():
        with _lock:
            runtimes = [entry[0] for entry in _runtimes.values()] + list(_cluster_runtimes.values())
        for rt in runtimes:
            rt.interrupt()

    _exiting = True
    interrupt_all()
    deadline = time.monotonic() + grace
    for r in list(_live_runs):
        try:
            r._h.stop()
            r._h.wait(max(0.0, deadline - time.monotonic()))
        except Exception:
            pass
    with _active_cv:
        while _active and time.monotonic() < deadline:
            _active_cv.wait(0.05)
            interrupt_all()  # a run that began after the first interrupt (a thread between its checks)
    _loom._exiting()  # node threads that end from now on leave the GIL alone


atexit.register(_stop_all_runs)


def _graph_of(g, threads: int, set) -> "tuple[_loom.GraphData, list]":
    if isinstance(g, Graph):
        return g._data, _set_list(set)
    if isinstance(g, (str, os.PathLike)):
        return _runtime(threads).load(os.fspath(g), []), _set_list(set)
    raise TypeError(f"expected a loom.Graph or a graph file's path, found {type(g).__name__}")


def load(path: Union[str, "os.PathLike[str]"], *, set: Optional[Union[Mapping[str, Any], Sequence[str]]] = None, threads: int = 0) -> Graph:
    """Loads and validates a graph file, with overrides as `loom run --set` (set={"src.count": 5}).
    Raises GraphError naming file:line:col of every mistake."""
    return Graph._wrap(_runtime(threads).load(os.fspath(path), _set_list(set)))


def loads(yaml: str, *, name: str = "<text>", set=None, threads: int = 0) -> Graph:
    """As load(), from YAML text; `name` stands for the file in errors."""
    return Graph._wrap(_runtime(threads).load_text(yaml, name, _set_list(set)))


# -- reports ----------------------------------------------------------------------------------------------


class NodeStats:
    """One node's counters in a report (its instances summed where a report sums them)."""

    __slots__ = ("node", "kind", "instance", "replicas", "in_", "out", "busy_ns", "queue_hwm", "restarts",
                 "dropped", "late", "rejected")

    def __init__(self, d: Mapping[str, Any]):
        for k in self.__slots__:
            setattr(self, k, d["in" if k == "in_" else k])

    def as_dict(self) -> dict:
        return {("in" if k == "in_" else k): getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return (f"<loom.NodeStats {self.node} ({self.kind}) in={self.in_} out={self.out} "
                f"restarts={self.restarts}>")


class Report:
    """What a run did: result ("ok", "failed", "interrupted"), error (naming node, input and reason; a Python
    kind's error holds its traceback), seconds, and per node instance its counters (`nodes`);
    `report["node"]` sums a node's instances."""

    def __init__(self, d: Mapping[str, Any]):
        self.result: str = d["result"]
        self.error: str = d["error"]
        self.seconds: float = d["seconds"]
        self.nodes: list = [NodeStats(n) for n in d["nodes"]]
        self.edges: list = list(d["edges"])
        self.moved: list = list(d["moved"])
        self._table: str = d["table"]

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def __getitem__(self, node: str) -> NodeStats:
        mine = [n for n in self.nodes if n.node == node]
        if not mine:
            raise KeyError(f"the report has no node `{node}`")
        total = mine[0].as_dict()
        for n in mine[1:]:
            for k in ("in", "out", "busy_ns", "restarts", "dropped", "late", "rejected"):
                total[k] += n.as_dict()[k]
            total["queue_hwm"] = max(total["queue_hwm"], n.queue_hwm)
        return NodeStats(total)

    def table(self) -> str:
        """The summary table `loom run` prints."""
        return self._table

    def raise_for_error(self) -> "Report":
        """Raises RunError (with .report) unless the run ended ok; returns self."""
        if not self.ok:
            e = RunError(self.error or self.result)
            e.report = self
            raise e
        return self

    def __repr__(self) -> str:
        return f"<loom.Report {self.result} in {self.seconds:.3f} s, {len(self.nodes)} node instances>"


# -- running ----------------------------------------------------------------------------------------------


def _progress(fn: Optional[Callable[["Report"], Any]]):
    return None if fn is None else (lambda d: fn(Report(d)))


def run(graph: Union[Graph, str], *, threads: int = 0, set=None, check: bool = True,
        progress: Optional[Callable[["Report"], Any]] = None, progress_every: float = 0.5) -> Report:
    """Runs `graph` (a Graph or a graph file) in this process to the end and returns its report.
    The GIL is released for the whole run; Ctrl-C stops it and raises KeyboardInterrupt. With check (the
    default) a failed run raises RunError (its .report the report); check=False returns it whatever.
    `progress(report)` is called every `progress_every` seconds with the counts so far, on a thread of the
    run's (what it raises is printed as unraisable and the run goes on)."""
    data, s = _graph_of(graph, threads, set)
    with _counted():
        report = Report(_runtime(threads).run(data, s, _progress(progress), progress_every))
    if check:
        report.raise_for_error()
    return report


class Run:
    """A started graph (loom.start): push values into its program.input nodes, take them from its
    program.output nodes. Both wait while the graph is full (backpressure) and let go of the GIL meanwhile.
    As a context manager the run is stopped on leaving the block unless it has ended (wait() in the block
    to let it finish)."""

    def __init__(self, handle: "_loom.Running", graph: Graph):
        self._h = handle
        self.graph = graph
        self._inputs = [n["name"] for n in graph.nodes if n["kind"] == "program.input"]
        self._outputs = [n["name"] for n in graph.nodes if n["kind"] == "program.output"]
        self._report: Optional[Report] = None

    def push(self, node: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Adds `value` to program.input `node`, waiting while it is full (up to `timeout` seconds: then
        False). Raises RunError once the run has ended."""
        return self._h.push(node, value, timeout)

    def try_push(self, node: str, value: Any) -> bool:
        """Adds `value` if there is room now; False otherwise."""
        return self._h.try_push(node, value)

    def close(self, node: Optional[str] = None) -> None:
        """No more values on input `node` (None: on every input): once they are taken, the graph drains."""
        for n in ([node] if node is not None else self._inputs):
            self._h.close(n)

    def take(self, node: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """The next value of program.output `node` (None: the only one), waiting up to `timeout` seconds
        (None: as long as it takes; TimeoutError after). Raises EndOfStream once the run ended ok and every
        value was taken, RunError when the run failed or was stopped."""
        have, value = self._h.take(self._output(node), timeout)
        if not have:
            raise EndOfStream(f"program.output `{self._output(node)}` has ended")
        return value

    def values(self, node: Optional[str] = None, timeout: Optional[float] = None) -> Iterator[Any]:
        """Every value of output `node` until it ends: `for v in run.values("out"): ...`."""
        name = self._output(node)
        while True:
            have, value = self._h.take(name, timeout)
            if not have:
                return
            yield value

    def _output(self, node: Optional[str]) -> str:
        if node is not None:
            return node
        if len(self._outputs) != 1:
            raise ValueError(f"graph `{self.graph.name}` has {len(self._outputs)} program.output nodes: name one")
        return self._outputs[0]

    def wait(self, timeout: Optional[float] = None) -> Optional[Report]:
        """The report once the run has ended (None if it has not within `timeout` seconds)."""
        d = self._h.wait(timeout)
        if d is None:
            return None
        self._report = Report(d)
        return self._report

    @property
    def done(self) -> bool:
        return self._h.done()

    @property
    def report(self) -> Optional[Report]:
        return self._report if self._report is not None else self.wait(0)

    def stop(self) -> None:
        """Stops the run now (its report says interrupted); returns at once."""
        self._h.stop()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        if not self._h.done():
            self._h.stop()
        self.wait()
        self._h.release()


def start(graph: Union[Graph, str], *, threads: int = 0, set=None,
          progress: Optional[Callable[["Report"], Any]] = None, progress_every: float = 0.5) -> Run:
    """Starts `graph` and returns at once: the program feeds its program.input nodes and takes from its
    program.output nodes (`with loom.start(g) as run: run.push("in", x); run.take("out")`)."""
    data, s = _graph_of(graph, threads, set)
    g = graph if isinstance(graph, Graph) else Graph._wrap(data)
    r = Run(_runtime(threads).start(data, s, _progress(progress), progress_every), g)
    _live_runs.add(r)
    return r


def run_cluster(graph: Union[Graph, str], cluster: str, *, insecure: bool = False, connect_timeout: float = 10.0,
                threads: int = 0, set=None, check: bool = True,
                progress: Optional[Callable[["Report"], Any]] = None, progress_every: float = 0.5) -> Report:
    """Runs `graph` across the hosts of `cluster` (a cluster file, or "slurm" / "slurm:N" inside an
    allocation; docs/cluster.md). The workers must know every kind the graph uses. Ctrl-C stops it."""
    data, s = _graph_of(graph, threads, set)
    from . import _kinds

    # A graph of loom's own kinds runs on `loom worker`s, which compare the driver's kinds with theirs: a
    # runtime without the Python kinds. One that uses Python kinds needs workers that have them (loom.Worker,
    # `python3 -m loom.worker --import MODULE`): every kind this process registered.
    used = sorted({n["kind"] for n in data.nodes() if n["kind"] in _kinds.specs})
    rt = _runtime(threads) if used else _cluster_runtime(threads)
    # Under Slurm the driver starts the workers: with Python kinds, `python3 -m loom.worker` importing the
    # modules that define them (a kind defined in the driver's own script cannot be imported there).
    worker_command = []
    if used and str(cluster).startswith("slurm"):
        worker_command = [sys.executable, "-m", "loom.worker"]
        for name in used:
            module = _kinds.specs[name][0].get("module", "")
            if not module or module == "__main__":
                raise ValueError(f"kind `{name}` is defined in the driver's script (module `{module or '?'}`): Slurm "
                                 "workers import the modules of the graph's Python kinds, so define it in a module")
            if module not in worker_command:
                worker_command += ["--import", module]
    with _counted():
        report = Report(rt.run_cluster(data, str(cluster), insecure, connect_timeout, s,
                                       _progress(progress), progress_every, worker_command))
    if check:
        report.raise_for_error()
    return report


class Server:
    """A graph served over HTTP (OpenAI-compatible chat completions, docs/serve.md) from threads of its own."""

    def __init__(self, handle: "_loom.Server", host: str):
        self._h = handle
        self.port: int = handle.port
        self.host = host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """In-flight requests get a grace period, then the listener closes. Idempotent."""
        self._h.stop()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(graph: Union[Graph, str], *, host: str = "127.0.0.1", port: int = 0, input: str = "", output: str = "",
          max_concurrent: int = 8, api_key: Optional[str] = None, threads: int = 0) -> Server:
    """Serves `graph` over HTTP until the Server is stopped (port 0: any free port, Server.port says which)."""
    data, _ = _graph_of(graph, threads, None)
    return Server(_runtime(threads).serve(data, host, port, input, output, max_concurrent, api_key), host)


class Worker:
    """A `loom worker` in this process, on a thread of its own, that knows the kinds registered here (Python
    ones included): a driver's `run_cluster` can place Python kinds on it. `python3 -m loom.worker --listen
    tcp://HOST:PORT --import MODULE` runs one as a process. Import the same modules as the driver, so that
    both have the same kinds (a worker refuses a run whose kinds differ, naming the first difference).

        with loom.Worker("tcp://127.0.0.1:0", insecure=True) as w:
            print(w.address)          # the address bound (port 0: the port chosen)
            w.wait()                  # serves runs until stop() or Ctrl-C
    """

    def __init__(self, listen: str, *, name: str = "", insecure: bool = False, once: bool = False,
                 threads: int = 0, key: str = ""):
        """key: the prefix of this worker's CurveZMQ key pair (`loom keygen`); empty and not insecure: the
        user's own pair, as `loom worker` without key options."""
        self._h = _runtime(threads).worker(listen, name, insecure, once, key)

    @property
    def address(self) -> str:
        """The address the worker listens on (waits up to 30 s for it to bind)."""
        return self._h.address(30.0)

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Waits until the worker ends (stop(), `once` after its run, Ctrl-C): its exit status, or None."""
        return self._h.wait(timeout)

    def stop(self) -> None:
        self._h.stop()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.wait()


def kinds(*, threads: int = 0) -> list:
    """The names of every kind this process knows (built-in, plugins, and registered from Python)."""
    return _runtime(threads).kind_names()


def tool_schema(kind: Union[str, Callable], *, node: Optional[str] = None) -> dict:
    """The OpenAI-style `tools` entry an agent offers its model for a node of tool kind `kind`."""
    import json

    name = _kind_name(kind)
    return json.loads(_runtime(0).tool_schema(name, node or name.split(".")[-1]))
