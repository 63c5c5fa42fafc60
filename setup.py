"""Only what pyproject.toml cannot say: the optional mypyc-compiled modules (buildtools/hotpath.py)."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(Path(__file__).resolve().parent / "buildtools"))
from hotpath import extensions, tolerant_build_ext

setup(ext_modules=extensions(Path("src")), cmdclass={"build_ext": tolerant_build_ext(build_ext)})
