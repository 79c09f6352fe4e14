"""Build hook: the detection models compiled to C by mypyc (docs/detection.md, "Where it runs").

The Python modules stay the source of truth: mypyc compiles the same typed code (no second
implementation) into C extensions that run it about twice as fast, which is what lets
detection keep up with ingest on a 2-core gateway. Without a C compiler, or with
EDGE_PURE_PYTHON=1, the extensions are skipped and the package runs as plain Python.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

# The per-reading path: the engine, what it drives for each reading, and the session that
# feeds it batches. `edge.detection.native.COMPILED` is this list (tests check they agree).
COMPILED = ["asset_model", "asset_rows", "drift", "engine", "finding", "flatline", "history",
            "lifecycle", "likelihood", "limits", "outlier", "rate", "seasonal", "sensor_model",
            "session", "silence", "tails", "validation"]


def extensions() -> list[Extension]:
    # Earlier builds go first, in place (they take precedence on import) and in build/
    # (setuptools would reuse them): a compile that fails leaves plain Python, never old code.
    for built in [*Path("edge/detection").glob("*.so"), *Path("build").glob("lib*/edge/detection/*.so")]:
        built.unlink()
    if os.environ.get("EDGE_PURE_PYTHON") == "1":
        return []
    from mypyc.build import mypycify

    modules: list[Extension] = mypycify([f"edge/detection/{name}.py" for name in COMPILED],
                                        group_name="edge.detection._native")
    for module in modules:
        module.optional = True  # a failed compile leaves plain Python, not a failed install
    return modules


setup(ext_modules=extensions())
