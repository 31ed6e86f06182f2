"""`python3 -m loom.worker`: a loom worker process that knows the Python kinds of the modules it imports.

    python3 -m loom.worker --listen tcp://127.0.0.1:7101 --import acme.kinds [--name a] [--insecure]
                           [--address-file FILE] [--once]

It serves runs from a driver (`loom.run_cluster`) until Ctrl-C or SIGTERM, as `loom worker` does
(docs/cluster.md), with the kinds of loom and of the modules named by --import (the driver must have
imported the same ones).
"""
import argparse
import importlib
import os
import signal
import sys

import loom


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m loom.worker", description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="tcp://HOST:PORT (PORT 0: any free port)")
    ap.add_argument("--name", default="", help="name on the wire (default: derived from the address)")
    ap.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                    help="a module whose @loom.kind / @loom.tool functions this worker runs (repeatable)")
    ap.add_argument("--insecure", action="store_true", help="plain TCP, no authentication (docs/cluster.md)")
    ap.add_argument("--address-file", help="write the address bound to this file")
    ap.add_argument("--once", action="store_true", help="leave after one run")
    a = ap.parse_args(argv)
    for m in a.modules:
        importlib.import_module(m)
    signal.signal(signal.SIGTERM, _terminate)
    w = loom.Worker(a.listen, name=a.name, insecure=a.insecure, once=a.once)
    try:
        address = w.address
        if a.address_file:
            with open(a.address_file + ".tmp", "w") as f:
                f.write(address + "\n")
            os.replace(a.address_file + ".tmp", a.address_file)
        rc = w.wait()
    except KeyboardInterrupt:
        w.stop()
        rc = w.wait()
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
