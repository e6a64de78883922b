"""Build the one extension, shmproc._core.

SHMPROC_DEBUG=1 builds it with assertions and bounds checks on, -O0 -g, for gdb and valgrind.
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("SHMPROC_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "binding": False,
}

extension = Extension(
    "shmproc._core",
    sources=["shmproc/_core.pyx"],
    include_dirs=["shmproc/includes"],
    extra_compile_args=["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O2"],
    define_macros=[("_GNU_SOURCE", "1")],
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives=directives,
        compile_time_env={"SHMPROC_DEBUG_BUILD": DEBUG},     # _core.DEBUG
        include_path=["shmproc", "shmproc/includes"],
        gdb_debug=DEBUG,
        # Each build's C file in a folder of its own: Cython regenerates a C file only when it is
        # older than its sources, not when the directives change, so with one shared file a debug
        # build would compile the release build's C (and the other way round).
        build_dir="build/debug" if DEBUG else "build/release",
    ),
)
