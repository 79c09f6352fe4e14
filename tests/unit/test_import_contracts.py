"""The layer rules (edge/__init__.py) hold: import-linter contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.support.services import REPO_ROOT


def test_every_layer_contract_is_kept() -> None:
    contracts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                            check=False, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout
    assert len(contracts) >= 9


def test_the_import_graph_sees_the_standard_library_so_the_purity_rule_has_teeth() -> None:
    graph = grimp.build_graph("edge", "cloud_sync", include_external_packages=True)
    assert graph.direct_import_exists(importer="edge.agents.anomaly", imported="asyncio")
    assert graph.direct_import_exists(importer="edge.daemon", imported="cloud_sync.syncer")
    assert not graph.find_shortest_chain(importer="edge.detection", imported="asyncio")
