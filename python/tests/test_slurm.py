"""loom.run_cluster(g, "slurm") with a Python kind, inside a real one-node Slurm allocation (the CTest fixture
`slurm` starts slurmctld and slurmd on loopback; ctest runs this file as `python_slurm` with SLURM_CONF set):
the driver starts `python3 -m loom.worker --import MODULE` as its workers with srun, with per-job keys."""
import os
import shutil
import subprocess
import sys

import pytest

KINDS_MODULE = '''
import loom

@loom.kind("test.slurm_cube")
def cube(x: int) -> int:
    return x * x * x
'''

DRIVER = '''
import sys
import loom
import slurmkinds

g = loom.Graph("python_on_slurm")
g.node("src", "source.sequence", count=1000) >> g.node("cube", slurmkinds.cube, replicas=2) >> \\
    g.node("out", "sink.file", path="out.jsonl")
report = loom.run_cluster(g, "slurm")
print("cube", report["cube"].in_, "out", report["out"].in_)
'''

SCRIPT_KIND_DRIVER = '''
import loom

@loom.kind("test.slurm_in_script")
def double(x: int) -> int:
    return 2 * x

g = loom.Graph("script_kind")
g.node("src", "source.sequence", count=10) >> g.node("d", double) >> g.node("out", "sink.count")
try:
    loom.run_cluster(g, "slurm")
except ValueError as e:
    print("refused:", e)
'''

needs_slurm = pytest.mark.skipif(not os.environ.get("SLURM_CONF") or not shutil.which("salloc"),
                                 reason="run by ctest as python_slurm: the `slurm` fixture starts Slurm")


def _env(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path)] + [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@needs_slurm
def test_a_python_kind_runs_on_slurm_workers_started_by_the_driver(tmp_path):
    (tmp_path / "slurmkinds.py").write_text(KINDS_MODULE)
    (tmp_path / "driver.py").write_text(DRIVER)
    r = subprocess.run(["salloc", "-n", "2", "--quiet", sys.executable, str(tmp_path / "driver.py")], env=_env(tmp_path),
                       cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "cube 1000 out 1000" in r.stdout
    values = sorted(int(line) for line in (tmp_path / "out.jsonl").read_text().split())
    assert values == sorted(x * x * x for x in range(1000))  # every value once (two replicas: any order)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".loom-slurm")]  # the per-job keys are gone


@needs_slurm
def test_a_python_kind_of_the_driver_script_is_refused_before_srun(tmp_path):
    (tmp_path / "driver.py").write_text(SCRIPT_KIND_DRIVER)
    r = subprocess.run(["salloc", "-n", "1", "--quiet", sys.executable, str(tmp_path / "driver.py")], env=_env(tmp_path),
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "refused: kind `test.slurm_in_script` is defined in the driver's script" in r.stdout
