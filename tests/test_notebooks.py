"""The notebooks run: each is executed with nbclient (offline, in a temporary directory), and the
committed copy stores its outputs. One test per notebook, so `-n 2` runs two at a time."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("notebook_runner", REPO / "notebooks" / "execute.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

EXPECTED = {"quickstart.ipynb", "finetune_and_deploy.ipynb", "anomaly_detection.ipynb", "denoising.ipynb",
            "generation.ipynb"}


def test_one_notebook_per_use():
    assert {p.name for p in runner.notebooks()} == EXPECTED


@pytest.mark.parametrize("path", runner.notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_and_stores_its_outputs(path):
    stored = nbformat.read(path, as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"]
    # committed executed, in one run from the top (notebooks/execute.py), with its outputs and no error
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{path.name}: run notebooks/execute.py"
    assert sum(bool(c.outputs) for c in code) >= len(code) - 1, f"{path.name}: stored without its outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], f"{path.name} stores an error"
    result = runner.execute(path, write=False)     # raises CellExecutionError on a failing cell
    assert result["cells"] == len(code)
