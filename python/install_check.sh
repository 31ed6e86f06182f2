#!/bin/sh
# CTest `python_install`: installs ./python as docs/python.md says (a venv that sees the system's packages,
# pip offline without build isolation), reusing this build folder (LOOM_BUILD_DIR: only the module is
# built, and it is already), then runs the README's example (python/tests/readme_example.py) with it from
# outside the source tree, so the installed package is the one imported.
set -eu
src=$1
build=$2
python=$3
venv=$build/python-venv
rm -rf "$venv"
"$python" -m venv --system-site-packages "$venv"
LOOM_BUILD_DIR=$build "$venv/bin/python" -m pip install --no-build-isolation --no-index --quiet "$src/python"
cd "$build"
"$venv/bin/python" -c 'import loom, sys; sys.exit(0 if loom.__file__.startswith(sys.prefix) else "loom imported from " + loom.__file__)'
"$venv/bin/python" "$src/python/tests/readme_example.py"
