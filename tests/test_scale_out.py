"""Scale-out, proven on one machine: `multi_worker` with two TensorFlow worker
processes talking over 127.0.0.1 (TF_CONFIG), and JAX `data_parallel` over two
host devices (XLA_FLAGS=--xla_force_host_platform_device_count=2). Each ends
with the same weights as a one-worker / one-device run of the same recipe."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = {"hidden": [32], "latent_dim": 4}
# 256 images, global batch 64: 4 steps per epoch, each split evenly between the replicas
RECIPE = dict(epochs=2, limit=256, batch_size=64)

WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import aezoo

    out, strategy = sys.argv[1], sys.argv[2]
    model, summary = aezoo.train("dense_mnist", output_dir=out, strategy=strategy, verbose=0, version=1,
                                 config_overrides=json.loads(sys.argv[3]), **json.loads(sys.argv[4]))
    run_dir = summary["weights"].rsplit("/", 1)[0]  # the chief's run directory, or RUN/worker-N
    np.savez(run_dir + "/final_weights.npz", *[np.asarray(w) for w in model.get_weights()])
    shardings = [len(getattr(getattr(v.value, "sharding", None), "device_set", ())) for v in model.trainable_variables]
    print("RESULT" + json.dumps({"replicas": summary["replicas"], "strategy": summary["strategy"],
                                 "loss": summary["history"]["loss"], "devices_per_variable": shardings}))
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "XLA_FLAGS")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=HERE + os.pathsep + env.get("PYTHONPATH", ""),
               AEZOO_OFFLINE="1", **extra)
    return env


def _result(proc, out, err):
    lines = [line for line in out.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and lines, err[-3000:]
    return json.loads(lines[-1][len("RESULT"):])


def _weights(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _launch(args, env):
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_multi_worker_two_processes_match_one_worker(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    common = [json.dumps(SMALL), json.dumps(RECIPE)]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(_launch([str(tmp_path / "multi"), "multi_worker", *common], _env(TF_CONFIG=tf_config)))
    procs.append(_launch([str(tmp_path / "single"), "none", *common], _env()))
    outs = [p.communicate(timeout=600) for p in procs]
    chief, worker, single = [_result(p, *o) for p, o in zip(procs, outs)]
    assert chief["strategy"] == "multi_worker" and chief["replicas"] == 2 and worker["replicas"] == 2
    assert single["replicas"] == 1
    # the chief writes the run directory; the other worker writes its own below it
    assert (tmp_path / "multi" / "dense_mnist.weights.h5").exists()
    assert (tmp_path / "multi" / "worker-1" / "dense_mnist.weights.h5").exists()
    multi = _weights(tmp_path / "multi" / "final_weights.npz")
    other = _weights(tmp_path / "multi" / "worker-1" / "final_weights.npz")
    alone = _weights(tmp_path / "single" / "final_weights.npz")
    for a, b, c in zip(multi, other, alone):
        np.testing.assert_array_equal(a, b)  # the workers agree exactly (all-reduced updates)
        np.testing.assert_allclose(a, c, atol=2e-5, rtol=1e-4)  # and match one worker within float error
    np.testing.assert_allclose(chief["loss"], single["loss"], rtol=1e-4)


def test_jax_data_parallel_over_two_host_devices_matches_one_device(tmp_path):
    pytest.importorskip("jax")
    env = _env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    common = [json.dumps(SMALL), json.dumps(RECIPE)]
    procs = [_launch([str(tmp_path / "dp"), "data_parallel", *common], env),
             _launch([str(tmp_path / "one"), "none", *common], env)]
    outs = [p.communicate(timeout=600) for p in procs]
    dp, one = [_result(p, *o) for p, o in zip(procs, outs)]
    assert dp["strategy"] == "data_parallel" and dp["replicas"] == 2 and one["replicas"] == 1
    assert set(dp["devices_per_variable"]) == {2}  # every variable lives on both devices
    for a, b in zip(_weights(tmp_path / "dp" / "final_weights.npz"), _weights(tmp_path / "one" / "final_weights.npz")):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)
