"""An independent Sparkplug B edge node for tests: Eclipse Tahu's JavaScript client and payload
library (tests/support/sparkplug_node, `npm ci` by `make test`), driven over stdin/stdout."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "sparkplug_node"


class TahuNode:
    """One edge node process; `call(op, **args)` runs a command and returns its answer."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None or not (NODE_DIR / "node_modules" / "sparkplug-client").is_dir():
            raise RuntimeError("node and tests/support/sparkplug_node/node_modules are needed: "
                               "run `make test` (it runs npm ci there)")
        self._process = subprocess.Popen(
            [node, str(NODE_DIR / "edge_node.js")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=NODE_DIR)
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)

    def call(self, op: str, timeout_s: float = 20.0, **args: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._process.stdin.flush()
        try:
            answer: dict[str, Any] = json.loads(self._answers.get(timeout=timeout_s))
        except queue.Empty:
            raise AssertionError(f"the Tahu node did not answer {op!r} in {timeout_s} s") from None
        if "error" in answer:
            raise AssertionError(f"the Tahu node failed {op!r}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
