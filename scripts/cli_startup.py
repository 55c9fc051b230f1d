#!/usr/bin/env python3
"""How long the light `aezoo` commands take to start, against `python -c pass`.

    python scripts/cli_startup.py [--repeats 7]

Runs each command `--repeats` times in a fresh interpreter (after one warm-up
run that fills the OS file cache) and prints one JSON object: per command the
median and minimum wall seconds, the median minus the median of
`python -c pass`, whether that is within the 1.5 s budget (issue 10 item 7),
and the machine. A timing, not a test: the test suite checks instead that
these commands import neither TensorFlow nor Keras (tests/test_cli.py).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

BUDGET_S = 1.5
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "aezoo list": [sys.executable, "-m", "aezoo", "list"],
    "aezoo list --json": [sys.executable, "-m", "aezoo", "list", "--json"],
    "aezoo --help": [sys.executable, "-m", "aezoo", "--help"],
    "aezoo info conv_mnist": [sys.executable, "-m", "aezoo", "info", "conv_mnist"],
    "aezoo list --family nope (argument error)": [sys.executable, "-m", "aezoo", "list", "--family", "nope"],
}


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env={**os.environ, "AEZOO_OFFLINE": "1"})
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    results = {}
    for label, cmd in COMMANDS.items():
        timed(cmd)  # warm-up
        times = [timed(cmd) for _ in range(args.repeats)]
        results[label] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}
    base = results["python -c pass"]["median_s"]
    for label, r in results.items():
        if label != "python -c pass":
            r["over_python_s"] = round(r["median_s"] - base, 3)
            r["within_budget"] = r["over_python_s"] <= BUDGET_S
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    print(json.dumps({"budget_over_python_s": BUDGET_S, "repeats": args.repeats, "commands": results,
                      "machine": {"cores": len(os.sched_getaffinity(0)), "load_1min": load,
                                  "python": platform.python_version()}}, indent=2))


if __name__ == "__main__":
    main()
