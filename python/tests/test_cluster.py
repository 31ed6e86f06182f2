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
