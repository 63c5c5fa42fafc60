"""Only what pyproject.toml cannot say: the mypyc-compiled modules of wheels, the HTTP/2 codec's C shim and
the HTTP/1.1 response head splitter (buildtools/hotpath.py)."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent / "buildtools"))
from hotpath import build_kind, extensions, h1_shim_extensions, recording_build_py, shim_extensions, strict_build_ext

kind = build_kind()
src = Path("src")
setup(
    ext_modules=extensions(src, kind) + shim_extensions(src, kind) + h1_shim_extensions(src, kind),
    cmdclass={"build_ext": strict_build_ext(build_ext), "build_py": recording_build_py(build_py, kind)},
)
