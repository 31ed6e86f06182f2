"""`python3 -m loom.worker`: a loom worker process that knows the Python kinds of the modules it imports.

    python3 -m loom.worker --listen tcp://127.0.0.1:7101 --import acme.kinds [--name a] [--insecure | --key K]
                           [--address-file FILE] [--once]

It serves runs from a driver (`loom.run_cluster`) until Ctrl-C or SIGTERM, as `loom worker` does
(docs/cluster.md), with the kinds of loom and of the modules named by --import (the driver must have
imported the same ones). Under srun, `%t` in --name and --address-file is the task's rank, and the address
file's second line is the Slurm node: `loom.run_cluster(g, "slurm")` starts these as its workers when the
graph uses Python kinds.
"""
import argparse
import importlib
import os
import signal
import sys

import loom


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _task(text: str) -> str:
    """`%t`: the task's rank under srun (SLURM_PROCID), as in srun's own file name patterns; 0 outside it."""
    return text.replace("%t", os.environ.get("SLURM_PROCID", "0"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m loom.worker", description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="tcp://HOST:PORT (PORT 0: any free port)")
    ap.add_argument("--name", default="", help="name on the wire (default: derived from the address)")
    ap.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                    help="a module whose @loom.kind / @loom.tool functions this worker runs (repeatable)")
    ap.add_argument("--insecure", action="store_true", help="plain TCP, no authentication (docs/cluster.md)")
    ap.add_argument("--key", default="", help="this worker's CurveZMQ key pair: PREFIX of PREFIX.key / PREFIX.pub")
    ap.add_argument("--address-file", help="write the address bound to this file")
    ap.add_argument("--once", action="store_true", help="leave after one run")
    a = ap.parse_args(argv)
    for m in a.modules:
        importlib.import_module(m)
    signal.signal(signal.SIGTERM, _terminate)
    w = loom.Worker(a.listen, name=_task(a.name), insecure=a.insecure, once=a.once, key=a.key)
    try:
        address = w.address
        if a.address_file:
            # Written whole, then renamed: the address, then the Slurm node (as `loom worker` writes it).
            path = _task(a.address_file)
            with open(path + ".tmp", "w") as f:
                f.write(address + "\n" + os.environ.get("SLURMD_NODENAME", "") + "\n")
            os.replace(path + ".tmp", path)
        rc = w.wait()
    except KeyboardInterrupt:
        w.stop()
        rc = w.wait()
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
