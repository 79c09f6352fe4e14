"""Whether the detection models run compiled (mypyc, see setup.py) or as plain Python.

Reported at start-up and by the benchmarks, because the two differ about twofold in speed.
In a source checkout the compiled modules sit beside their sources (an editable install
builds them in place) and take precedence on import: after an edit they are stale until
`make install` rebuilds them, which `stale()` detects for the test suite.
"""

from __future__ import annotations

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
    """Compiled modules older than their source beside them (edited since the last build);
    in a source checkout only (an installed wheel's files carry no meaningful order)."""
    if not os.path.exists(os.path.join(_PACKAGE_DIR, "..", "..", "setup.py")):
        return []
    found = []
    for name in COMPILED:
        extension = _extension(name)
        source = os.path.join(_PACKAGE_DIR, f"{name}.py")
        if extension is not None and os.path.exists(source) \
                and os.path.getmtime(source) > os.path.getmtime(extension):
            found.append(name)
    return found
