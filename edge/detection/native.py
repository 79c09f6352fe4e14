"""Whether the detection models run compiled (mypyc, see setup.py) or as plain Python.

Reported at start-up and by the benchmarks, because the two differ about twofold in speed.
In a source checkout the compiled modules sit beside their sources (an editable install
builds them in place) and take precedence on import: after an edit they are stale until
`make install` rebuilds them, which `stale()` detects (pytest refuses to start, the daemon
warns).
"""

from __future__ import annotations

import glob
import os
from importlib.machinery import EXTENSION_SUFFIXES

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The modules setup.py compiles (tests/unit/test_native.py checks the two lists agree).
COMPILED = ("asset_model", "asset_rows", "drift", "engine", "finding", "flatline", "history",
            "lifecycle", "likelihood", "limits", "outlier", "rate", "seasonal", "sensor_model",
            "session", "silence", "tails", "validation")


def _extension(name: str) -> str | None:
    """The module's C extension beside this file, if built; the import system takes an
    extension before a source of the same name."""
    for suffix in EXTENSION_SUFFIXES:
        path = os.path.join(_PACKAGE_DIR, name + suffix)
        if os.path.exists(path):
            return path
    return None


def compiled_modules() -> list[str]:
    """The detection modules that import as C extensions."""
    return [name for name in COMPILED if _extension(name) is not None]


def build() -> str:
    """"compiled (mypyc)", "pure Python", or "partly compiled: ..." for logs and benchmarks."""
    done = compiled_modules()
    if len(done) == len(COMPILED):
        return "compiled (mypyc)"
    return f"partly compiled: {', '.join(done)}" if done else "pure Python"


def stale() -> list[str]:
    """Sources edited since the compiled modules were built: the compiled ones and what they
    take types from (the rest of edge/detection, edge/records.py), as the Makefile rebuilds
    on. In a source checkout only (an installed wheel's file times carry no order)."""
    root = os.path.dirname(os.path.dirname(_PACKAGE_DIR))
    built = [path for path in map(_extension, COMPILED) if path is not None]
    if not built or not os.path.exists(os.path.join(root, "setup.py")):
        return []
    oldest = min(os.path.getmtime(path) for path in built)
    sources = sorted(glob.glob(os.path.join(_PACKAGE_DIR, "*.py")))
    sources.append(os.path.join(os.path.dirname(_PACKAGE_DIR), "records.py"))
    return [os.path.relpath(source, root) for source in sources
            if os.path.exists(source) and os.path.getmtime(source) > oldest]
