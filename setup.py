"""Build hook: the detection models compiled to C by mypyc (docs/detection.md, "Where it runs").

The Python modules stay the source of truth: mypyc compiles the same typed code (no second
implementation) into C extensions that run it about twice as fast, which is what lets
detection keep up with ingest on a 2-core gateway. Without a C compiler, or with
EDGE_PURE_PYTHON=1, the extensions are skipped and the package runs as plain Python.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The per-reading path: the engine, what it drives for each reading, and the session that
# feeds it batches. `edge.detection.native.COMPILED` is this list (tests check they agree).
COMPILED = ["asset_model", "asset_rows", "drift", "engine", "finding", "flatline", "history",
            "lifecycle", "likelihood", "limits", "outlier", "rate", "seasonal", "sensor_model",
            "session", "silence", "tails", "validation"]


class FreshBuildExt(build_ext):
    """Removes the extensions this build replaces before building them: a compile that fails
    then leaves plain Python, never an earlier build (in place, where it would take precedence
    on import, or in build/, where setuptools would reuse it for a wheel)."""

    def run(self) -> None:
        for extension in self.extensions:
            filename = self.get_ext_filename(extension.name)
            targets = [os.path.join(self.build_lib, filename)]
            if self.inplace or getattr(self, "editable_mode", False):
                targets.append(filename)
            for target in targets:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(target)
        super().run()


def extensions() -> list[Extension]:
    if os.environ.get("EDGE_PURE_PYTHON") == "1":
        for built in Path("edge/detection").glob("*.so"):  # would take precedence on import
            built.unlink()
        return []
    from mypyc.build import mypycify

    modules: list[Extension] = mypycify([f"edge/detection/{name}.py" for name in COMPILED],
                                        group_name="edge.detection._native")
    for module in modules:
        module.optional = True  # a failed compile leaves plain Python, not a failed install
    return modules


setup(ext_modules=extensions(), cmdclass={"build_ext": FreshBuildExt})
