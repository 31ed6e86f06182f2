"""Builds loom._loom with loom's own CMake project (the folder above this one), then packages loom/.

The extension is the CMake target `loom_python` (python/CMakeLists.txt); it links loom's static libraries,
so the wheel holds one shared object and needs no libloom.so. Offline: CMake, a C++20 compiler, pybind11-dev
and the packages of the README (scripts/dev.sh). Environment:
  LOOM_BUILD_DIR  the CMake build folder to use (default: python/build/cmake); an existing one, e.g. the
                  repository's build/ (`cmake --preset ci`), is reused as configured, which is fast.
  LOOM_BUILD_JOBS parallel compile jobs (default: the machine's cores).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def version() -> str:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    m = re.search(r"project\(loom VERSION ([0-9.]+)", text)
    return m.group(1) if m else "0.0.0"


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = Path(os.environ.get("LOOM_BUILD_DIR") or HERE / "build" / "cmake").resolve()
        if not (build_dir / "CMakeCache.txt").exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja" if shutil.which("ninja") else "Unix Makefiles",
                            "-DCMAKE_BUILD_TYPE=Release", "-DLOOM_PYTHON=ON", "-DLOOM_BUILD_TESTS=OFF",
                            "-DLOOM_BUILD_BENCH=OFF", "-DLOOM_BUILD_EXAMPLES=OFF", "-DLOOM_INSTALL=OFF",
                            f"-DPython3_EXECUTABLE={sys.executable}"], check=True)
        jobs = os.environ.get("LOOM_BUILD_JOBS") or str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "loom_python", "--parallel", jobs], check=True)
        built = sorted((build_dir / "python" / "loom").glob("_loom*.so"))
        if not built:
            raise RuntimeError(f"no _loom*.so under {build_dir}/python/loom after the build")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        # The built module's name carries its interpreter's tag; the wheel's name is this interpreter's.
        shutil.copyfile(built[-1], target)


setup(
    version=version(),
    ext_modules=[Extension("loom._loom", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
