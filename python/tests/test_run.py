"""Running graphs: reports, failures with Python tracebacks, restarts, the GIL, Ctrl-C, start/push/take."""
import os
import signal
import threading
import time

import pytest

import loom


@loom.kind("test.fail_on")
def fail_on(x: int, *, bad: int = 3) -> int:
    if x == bad:
        raise ValueError(f"bad value {x}")
    return x


_attempts = {}


@loom.kind("test.flaky")
def flaky(x: int) -> int:
    """Fails the first time it sees 5."""
    if x == 5 and not _attempts.get(5):
        _attempts[5] = True
        raise RuntimeError("flaky once")
    return x * 2


def counted(kind, n=10, **params):
    g = loom.Graph("g")
    g.node("src", "source.sequence", count=n) >> g.node("k", kind, **params) >> g.node("out", "sink.count")
    return g


def test_report_counters_are_python_objects():
    report = loom.run(counted("flow.forward", 1000), threads=2)
    assert report.ok and report.result == "ok" and report.error == ""
    assert report["out"].in_ == 1000
    assert report["src"].out == 1000
    assert isinstance(report.nodes[0], loom.NodeStats)
    assert "out" in report.table()


def test_a_python_exception_fails_the_run_with_its_traceback():
    report = loom.run(counted(fail_on, bad=4), check=False)
    assert report.result == "failed"
    assert "Traceback (most recent call last)" in report.error
    assert "ValueError: bad value 4" in report.error
    assert "in fail_on" in report.error
    assert "`k`" in report.error or "k" in report.error
    with pytest.raises(loom.RunError) as e:
        loom.run(counted(fail_on, bad=2))
    assert "bad value 2" in str(e.value)
    assert e.value.report.result == "failed"


def test_a_python_failure_goes_through_restarts():
    _attempts.clear()
    g = loom.Graph("restarts")
    g.node("src", "source.sequence", count=10) >> g.node("k", flaky, restarts=1) >> g.node("out", "sink.count")
    report = loom.run(g)
    assert report["k"].restarts == 1
    assert report["out"].in_ == 10
    _attempts.clear()
    g2 = loom.Graph("no_restarts")
    g2.node("src", "source.sequence", count=10) >> g2.node("k", flaky) >> g2.node("out", "sink.count")
    assert "flaky once" in loom.run(g2, check=False).error


def test_the_gil_is_free_while_a_run_waits():
    # The kind waits for an event that only another Python thread sets: if loom.run held the GIL, that
    # thread could not run and the kind's wait would time out.
    started, release = threading.Event(), threading.Event()
    seen = []

    @loom.kind("test.wait_for_thread")
    def wait_for_thread(x: int) -> int:
        started.set()
        seen.append(release.wait(30))
        return x

    def helper():
        if started.wait(30):
            release.set()

    t = threading.Thread(target=helper)
    t.start()
    loom.run(counted(wait_for_thread, 1))
    t.join()
    assert seen == [True]


def test_keyboard_interrupt_stops_an_endless_run():
    g = counted("flow.forward", 10**15)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    # A deadline: if Ctrl-C did not stop the run, the runtime is interrupted after 60 s, the run ends
    # "interrupted" and loom.run raises RunError instead of KeyboardInterrupt.
    watchdog = threading.Timer(60, lambda: loom._runtime(2).interrupt())
    timer.start()
    watchdog.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            loom.run(g, threads=2)
    finally:
        watchdog.cancel()
    timer.join()
    print(f"KeyboardInterrupt after {time.monotonic() - t0:.2f} s (the signal came at 0.5 s)")
    # The runtime goes on: a later run is not affected.
    assert loom.run(counted("flow.forward", 5), threads=2)["out"].in_ == 5


def fed_graph(capacity=64):
    g = loom.Graph("fed")
    g.node("in", "program.input", capacity=capacity) >> g.node("k", "test.flaky") >> \
        g.node("out", "program.output", capacity=capacity)
    return g


def test_start_push_take_in_order():
    _attempts[5] = True  # flaky: no failure
    with loom.start(fed_graph(), threads=2) as run:
        for i in range(100):
            assert run.push("in", i)
        run.close()
        assert [run.take("out") for _ in range(100)] == [i * 2 for i in range(100)]
        with pytest.raises(loom.EndOfStream):
            run.take("out", timeout=30)
        report = run.wait()
    assert report.ok
    assert report["in"].out == 100


def test_backpressure_reaches_the_program():
    _attempts[5] = True
    g = fed_graph(capacity=2)
    with loom.start(g) as run:
        pushed = 0
        while run.push("in", pushed, timeout=0.2):
            pushed += 1
            assert pushed < 10_000  # the graph's room is bounded
        assert not run.try_push("in", -1)
        run.close()
        got = list(run.values("out"))
        assert got == [i * 2 for i in range(pushed)]
        assert run.wait().ok
    with pytest.raises(TimeoutError):
        with loom.start(fed_graph()) as run:
            run.take("out", timeout=0.05)


def test_a_failure_reaches_the_program_as_run_error():
    g = loom.Graph("fails")
    g.node("in", "program.input") >> g.node("k", fail_on, bad=1) >> g.node("out", "program.output")
    with loom.start(g) as run:
        run.push("in", 0)
        assert run.take("out", timeout=30) == 0
        run.push("in", 1)
        with pytest.raises(loom.RunError) as e:
            run.take("out", timeout=30)
        assert "bad value 1" in str(e.value)
        assert e.value.report["result"] == "failed"


def test_run_refuses_program_io_and_start_names_unknown_nodes():
    with pytest.raises(loom.GraphError):
        loom.run(fed_graph())
    with loom.start(fed_graph()) as run:
        with pytest.raises(ValueError):
            run.push("k", 1)


def test_serve_answers_health(source_dir):
    import urllib.request

    with loom.serve(str(source_dir / "configs" / "serve_echo.yaml")) as server:
        assert server.port > 0
        with urllib.request.urlopen(server.url + "/health", timeout=30) as r:
            assert r.status == 200


EXIT_WITH_RUNS = """
import atexit, sys, threading, time
# Registered before loom's own hook, so it runs after it: every run has ended by then.
atexit.register(lambda: print("runs still going:", sys.modules["loom"]._active))
import loom

@loom.kind("t.slow")
def slow(x):
    time.sleep(0.01)
    return x

g = loom.Graph("fed")
g.node("in", "program.input") >> g.node("k", slow) >> g.node("out", "program.output")
run = loom.start(g)
for i in range(10):
    run.push("in", i)
endless = loom.Graph("endless")
endless.node("s", "source.sequence", count=10**12) >> endless.node("k", slow) >> endless.node("o", "sink.count")
threading.Thread(target=lambda: loom.run(endless, check=False), daemon=True).start()
print("leaving with two runs going")
"""


def test_the_interpreter_exits_cleanly_with_runs_still_going(tmp_path):
    # Without the exit hook, node threads waiting for the GIL during finalization abort the process.
    import subprocess
    import sys

    script = tmp_path / "exit_with_runs.py"
    script.write_text(EXIT_WITH_RUNS)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "leaving with two runs going" in r.stdout
    assert "runs still going: 0" in r.stdout


def test_progress_reports_come_while_the_run_goes():
    # The kind waits until a progress report has come: the run cannot end before one does.
    reported = threading.Event()
    reports = []

    def progress(report):
        reports.append(report)
        reported.set()

    @loom.kind("test.wait_for_progress")
    def wait_for_progress(x: int) -> int:
        assert reported.wait(30), "no progress report within 30 s"
        return x

    report = loom.run(counted(wait_for_progress, 3), progress=progress, progress_every=0.02)
    assert report["out"].in_ == 3
    assert reports and isinstance(reports[0], loom.Report)
    assert any(n.node == "src" for n in reports[0].nodes)
