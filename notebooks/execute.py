#!/usr/bin/env python3
"""Execute the notebooks with nbclient and store their outputs in place.

    .venv/bin/python notebooks/execute.py                 # every notebook here
    .venv/bin/python notebooks/execute.py notebooks/denoising.ipynb --check   # run, do not write

Each notebook runs offline (AEZOO_OFFLINE=1) in a fresh temporary working
directory (so the files it writes go nowhere), with the kernel of this Python.
Prints one JSON line per notebook: {"notebook", "seconds", "cells", "written"};
exits 1 if a cell fails. `tests/test_notebooks.py` runs the same function.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 600          # per cell
# TensorFlow's C++ start-up lines go to the kernel's own stderr, not into the notebook's outputs.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]
ENV = {"AEZOO_OFFLINE": "1", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
       "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def notebooks() -> list[Path]:
    """The notebooks of this directory, sorted."""
    return sorted(HERE.glob("*.ipynb"))


def execute(path: str | os.PathLike, write: bool = False, cwd: str | os.PathLike | None = None) -> dict:
    """Run every cell of the notebook at `path` (nbclient, the python3 kernel of this
    interpreter); with `write`, store the outputs back into the file.

    Returns:
        {"notebook", "seconds", "cells", "written"}.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed (its traceback in the message).
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        with tempfile.TemporaryDirectory(prefix="aezoo-nb-") as tmp:
            started = time.perf_counter()
            client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                    resources={"metadata": {"path": str(cwd or tmp)}},
                                    extra_arguments=KERNEL_ARGUMENTS)
            client.execute()
            seconds = time.perf_counter() - started
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if write:
        nb.metadata.pop("widgets", None)
        tmp_path = path.with_name(f".{path.name}.tmp")
        nbformat.write(nb, tmp_path)
        os.replace(tmp_path, path)
    return {"notebook": path.name, "seconds": round(seconds, 1),
            "cells": sum(c.cell_type == "code" for c in nb.cells), "written": write}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="notebooks (default: every notebook in notebooks/)")
    parser.add_argument("--check", action="store_true", help="run them, but do not write the outputs")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.paths or notebooks():
        try:
            print(json.dumps(execute(path, write=not args.check)), flush=True)
        except Exception as e:  # a failing cell: report and go on
            failed += 1
            print(json.dumps({"notebook": Path(path).name, "error": f"{type(e).__name__}: {str(e)[-2000:]}"}),
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
