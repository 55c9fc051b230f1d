"""The house has no import cycles (registry<->weights and cards<->benchmark were
the two), and the modules the CLI's fast commands use import without Keras."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("import_graph", REPO / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(import_graph)

# Modules that must import in a fresh interpreter without Keras or TensorFlow
# (Keras loads when a verb needs it).
LIGHT = ("aezoo", "aezoo._io", "aezoo.errors", "aezoo.registry", "aezoo.weights", "aezoo.recipes", "aezoo.datasets",
         "aezoo.training", "aezoo.evaluation", "aezoo.deploy", "aezoo.cards", "aezoo.benchmark", "aezoo.demo",
         "aezoo.plotting", "aezoo.cli")


def test_no_import_cycles():
    edges = import_graph.graph()
    assert {"aezoo.registry", "aezoo.weights", "aezoo.cards", "aezoo.benchmark", "aezoo.models.base"} <= set(edges)
    assert import_graph.cycles(edges) == []
    assert "aezoo.registry" not in edges["aezoo.weights"]  # was: weights.verify imported the registry
    assert "aezoo.cards" not in edges["aezoo.benchmark"]  # was: benchmark imported cards.PRETRAINED_DIR


def test_the_checker_sees_cycles_inside_functions(tmp_path):
    pkg = tmp_path / "aezoo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from aezoo import b\n")
    (pkg / "b.py").write_text("from aezoo.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import aezoo.a\n")
    (pkg / "d.py").write_text("from . import b\n")
    edges = import_graph.graph(pkg)
    assert edges["aezoo.d"] == ["aezoo.b"]
    assert import_graph.cycles(edges) == [["aezoo.a", "aezoo.b", "aezoo.sub.c"]]


@pytest.mark.parametrize("module", LIGHT)
def test_module_imports_alone_without_keras(module):
    code = (f"import json, sys; import {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
