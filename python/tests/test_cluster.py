"""loom.run_cluster: a C++-only graph across two `loom worker` processes on 127.0.0.1 (plain TCP)."""
import os
import subprocess
import time
from pathlib import Path

import pytest

import loom

BINARY_DIR = Path(os.environ.get("LOOM_BINARY_DIR", Path(__file__).resolve().parents[2] / "build"))
LOOM = BINARY_DIR / "bin" / "loom"


@pytest.mark.skipif(not LOOM.exists(), reason=f"no {LOOM} (build the `loom` target)")
def test_run_cluster_on_two_workers(tmp_path):
    workers, addresses = [], []
    try:
        for name in ("a", "b"):
            address_file = tmp_path / f"{name}.address"
            workers.append(subprocess.Popen([str(LOOM), "worker", "--listen", "tcp://127.0.0.1:0", "--name", name,
                                             "--insecure", "--address-file", str(address_file)]))
            deadline = time.monotonic() + 60
            while not (address_file.exists() and address_file.read_text().strip()):
                assert time.monotonic() < deadline, f"worker {name} wrote no address"
                assert workers[-1].poll() is None, f"worker {name} exited"
                time.sleep(0.05)
            addresses.append(address_file.read_text().strip())
        cluster = tmp_path / "cluster.yaml"
        cluster.write_text("name: two\nhosts:\n" + "".join(
            f"  - {{name: {n}, address: \"{a}\", cpus: 4, memory: 8GiB}}\n" for n, a in zip("ab", addresses)))
        g = loom.Graph("spread")
        g.node("src", "source.sequence", count=1000, on_host="a") >> g.node("fwd", "flow.forward", on_host="b") >> \
            g.node("out", "sink.count", expect=1000, on_host="a")
        report = loom.run_cluster(g, str(cluster), insecure=True)
        assert report.ok
        assert report["out"].in_ == 1000
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()


KINDS_MODULE = '''
import loom

@loom.kind("test.cluster_square")
def square(x: int) -> int:
    return x * x
'''

DRIVER = '''
import sys
import loom
import clusterkinds

g = loom.Graph("python_on_workers")
g.node("src", "source.sequence", count=100, on_host="a") >> g.node("sq", clusterkinds.square, on_host="b") >> \\
    g.node("out", "sink.count", expect=100, on_host="a")
report = loom.run_cluster(g, sys.argv[1], insecure=True)
print("out", report["out"].in_, "sq on b", report["sq"].in_)
'''


def _python_workers_run(tmp_path, imports):
    """Two `python3 -m loom.worker` processes (worker a and b importing the modules in imports[name]) and a
    driver process that imported clusterkinds: the driver's CompletedProcess."""
    import sys

    (tmp_path / "clusterkinds.py").write_text(KINDS_MODULE)
    (tmp_path / "driver.py").write_text(DRIVER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path)] + [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    workers, addresses = [], []
    try:
        for name in ("a", "b"):
            address_file = tmp_path / f"{name}.address"
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "loom.worker", "--listen", "tcp://127.0.0.1:0", "--name", name, "--insecure",
                 "--address-file", str(address_file)] + [x for m in imports[name] for x in ("--import", m)],
                env=env, cwd=tmp_path))
            deadline = time.monotonic() + 60
            while not address_file.exists():
                assert time.monotonic() < deadline, f"worker {name} wrote no address"
                assert workers[-1].poll() is None, f"worker {name} exited"
                time.sleep(0.05)
            addresses.append(address_file.read_text().strip())
        cluster = tmp_path / "cluster.yaml"
        cluster.write_text("name: two\nhosts:\n" + "".join(
            f"  - {{name: {n}, address: \"{a}\", cpus: 4, memory: 8GiB}}\n" for n, a in zip("ab", addresses)))
        return subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(cluster)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()


def test_a_python_kind_on_the_second_of_two_python_workers(tmp_path):
    """Two `python3 -m loom.worker --import clusterkinds` processes and a driver process that imported the
    same module: the Python kind runs on worker b."""
    r = _python_workers_run(tmp_path, {"a": ["clusterkinds"], "b": ["clusterkinds"]})
    assert r.returncode == 0, r.stderr
    assert "out 100 sq on b 100" in r.stdout


def test_a_worker_without_the_python_module_refuses_the_run_naming_the_module(tmp_path):
    """Worker b did not import clusterkinds: the run fails, and the error names the kind, the node and the
    module to import (the driver's kind says where it came from)."""
    r = _python_workers_run(tmp_path, {"a": ["clusterkinds"], "b": []})
    assert r.returncode != 0
    assert "worker `b` refused the run: this worker lacks kind `test.cluster_square` (node `sq`)" in r.stderr, r.stderr
    assert "python module clusterkinds" in r.stderr
    assert "--import clusterkinds" in r.stderr
