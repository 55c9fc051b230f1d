"""aezoo.weights: cache, bundle, downloads (against a local HTTP server), offline mode,
read-only caches, concurrency, user files, download_all and verify.

Nothing here touches the real zoo's weights or the network: the manifest is
monkeypatched to point at small files served by an HTTP server on 127.0.0.1.
"""

import errno
import hashlib
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import aezoo
from aezoo import registry, weights
from aezoo.errors import WeightsError

BLOB = random.Random(0).randbytes(50_000)
BLOB_FILE = "blob.weights.h5"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def record(data, file):
    return {"file": file, "sha256": sha(data), "bytes": len(data), "metrics": {}}


# --------------------------------------------------------------------------- HTTP server


class Handler(http.server.BaseHTTPRequestHandler):
    """GET /MODE/FILE, MODE one of: ok, wrong, truncated, flaky<N>, slow, barrier, missing, trickle,
    huge, liar."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.requests.append(self.path)
            srv.hits[self.path] = srv.hits.get(self.path, 0) + 1
            hits = srv.hits[self.path]
        parts = self.path.strip("/").split("/")
        mode, file = parts[0], parts[-1]
        data = srv.files.get(file)
        if data is None or mode == "missing":
            return self.send_error(404)
        if mode.startswith("flaky"):
            if hits <= int(mode[len("flaky"):]):
                return self.send_error(500)
            mode = "ok"
        if mode == "slow":
            time.sleep(srv.slow_s)
            mode = "ok"
        if mode == "wrong":
            data = bytes(b ^ 0xFF for b in data)  # same length, other bytes
        if mode == "barrier":  # all concurrent clients are mid-download before anyone finishes
            self._headers(len(data))
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            srv.barrier.wait(timeout=30)
            self.wfile.write(data[len(data) // 2:])
            return
        if mode == "trickle":  # 1 byte every 50 ms: each read returns well within any timeout
            self._headers(len(data))
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(0.05)
            return
        if mode == "huge":  # no Content-Length, a body three times the size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            for _ in range(3):
                self.wfile.write(data)
            self.close_connection = True
            return
        if mode == "liar":  # announces more than the manifest says
            self._headers(len(data) * 3)
            self.wfile.write(data * 3)
            return
        if mode == "truncated":
            self._headers(len(data))
            self.wfile.write(data[: len(data) // 3])
            self.close_connection = True
            return
        self._headers(len(data))
        self.wfile.write(data)

    def _headers(self, length):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients hanging up on purpose
        pass


@pytest.fixture
def server():
    srv = Server(("127.0.0.1", 0), Handler)
    srv.lock = threading.Lock()
    srv.requests, srv.hits, srv.files = [], {}, {BLOB_FILE: BLOB}
    srv.slow_s = 1.5
    srv.barrier = threading.Barrier(4)
    srv.url = lambda mode: f"http://127.0.0.1:{srv.server_address[1]}/{mode}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def dead_url():
    """A URL on a port where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/down"


# --------------------------------------------------------------------------- environment


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fresh AEZOO_HOME, an empty bundle, fast retries, and a manifest with one blob."""
    home = tmp_path / "home"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    table = {"blob": record(BLOB, BLOB_FILE)}
    monkeypatch.setenv("AEZOO_HOME", str(home))
    monkeypatch.delenv("AEZOO_WEIGHTS_URL", raising=False)
    monkeypatch.delenv("AEZOO_OFFLINE", raising=False)
    monkeypatch.setenv("AEZOO_RETRIES", "3")
    monkeypatch.setenv("AEZOO_TIMEOUT", "5")
    monkeypatch.setattr(weights, "RETRY_BACKOFF", 0.01)
    monkeypatch.setattr(weights, "_FALLBACK_DIR", None)
    monkeypatch.setattr(weights, "_raw_manifest", lambda: table)
    monkeypatch.setattr(weights, "_bundle_dir", lambda: bundle)
    return type("Env", (), {"home": home, "cache": home / "weights", "bundle": bundle, "table": table,
                            "tmp": tmp_path})


def files_under(path):
    """Every file under path (relative names), temporary files included."""
    path = Path(path)
    if not path.exists():
        return set()
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


def assert_clean(env, expected=()):
    """The cache holds exactly `expected` (valid files), nothing partial or temporary."""
    assert files_under(env.home) == {f"weights/{f}" for f in expected}
    for f in expected:
        assert (env.cache / f).read_bytes() == BLOB


# --------------------------------------------------------------------------- downloads


def test_download_serves_file_and_caches_it(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    path = weights.resolve("blob")
    assert path == env.cache / BLOB_FILE
    assert_clean(env, [BLOB_FILE])
    assert len(server.requests) == 1
    assert weights.resolve("blob") == path  # second time: from the cache
    assert len(server.requests) == 1


def test_hash_mismatch_names_file_and_both_hashes(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("wrong"))
    with pytest.raises(WeightsError) as e:
        weights.resolve("blob")
    msg = str(e.value)
    assert BLOB_FILE in msg and sha(BLOB) in msg and sha(bytes(b ^ 0xFF for b in BLOB)) in msg
    assert server.url("wrong") in msg
    assert len(server.requests) == 1  # a wrong file is not retried
    assert_clean(env)


def test_truncated_body_is_retried_then_fails_clean(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("truncated"))
    monkeypatch.setenv("AEZOO_RETRIES", "2")
    with pytest.raises(WeightsError, match="truncated"):
        weights.resolve("blob")
    assert len(server.requests) == 2
    assert_clean(env)


def test_404_is_not_retried(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("missing"))
    with pytest.raises(WeightsError, match="404"):
        weights.resolve("blob")
    assert len(server.requests) == 1
    assert_clean(env)


def test_500_then_success_retries(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("flaky2"))
    assert weights.resolve("blob") == env.cache / BLOB_FILE
    assert len(server.requests) == 3
    assert_clean(env, [BLOB_FILE])


def test_500_more_often_than_retries_fails(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("flaky5"))
    with pytest.raises(WeightsError, match=r"HTTP 500.*3 attempts"):
        weights.resolve("blob")
    assert len(server.requests) == 3
    assert_clean(env)


def test_slow_server_times_out(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("slow"))
    monkeypatch.setenv("AEZOO_TIMEOUT", "0.3")
    monkeypatch.setenv("AEZOO_RETRIES", "1")
    start = time.monotonic()
    with pytest.raises(WeightsError, match="timed out"):
        weights.resolve("blob")
    assert time.monotonic() - start < server.slow_s
    assert_clean(env)


def test_trickling_server_hits_the_deadline(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("trickle"))
    monkeypatch.setenv("AEZOO_TIMEOUT", "5")  # never fires: a byte comes every 50 ms
    monkeypatch.setenv("AEZOO_DEADLINE", "0.5")
    monkeypatch.setenv("AEZOO_RETRIES", "1")
    start = time.monotonic()
    with pytest.raises(WeightsError, match="deadline of 0.5 s passed"):
        weights.resolve("blob")
    assert time.monotonic() - start < 3
    assert_clean(env)  # no .part left behind


@pytest.mark.parametrize("mode", ["huge", "liar"])
def test_oversized_body_is_rejected(env, server, monkeypatch, mode):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url(mode))
    with pytest.raises(WeightsError, match="longer than the expected 50000 bytes|announces 150000 bytes"):
        weights.resolve("blob")
    assert len(server.requests) == 1  # not retried
    assert_clean(env)


def test_oversized_body_is_cut_off_at_size_plus_one(env, monkeypatch):
    """However long the body, at most size + 1 bytes are read (and none written to the cache)."""
    delivered = []

    class Endless:
        headers = {}

        def read1(self, n):
            delivered.append(n)
            return b"x" * n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Endless())
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", "http://mirror.invalid/")
    with pytest.raises(WeightsError, match="longer than the expected"):
        weights.resolve("blob")
    assert sum(delivered) == len(BLOB) + 1
    assert_clean(env)


def test_stale_part_files_are_cleaned_on_the_next_download(env, server, monkeypatch):
    env.cache.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from aezoo import _io

    stale = env.cache / _io.temp_name(BLOB_FILE, ".part").replace(f"-{os.getpid()}.", f"-{dead.pid}.")
    stale.write_bytes(BLOB[:100])  # a download killed half-way
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    weights.resolve("blob")
    assert_clean(env, [BLOB_FILE])


def test_downloaded_file_mode_follows_the_umask(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    old = os.umask(0o002)
    try:
        path = weights.resolve("blob")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o664


def test_server_down(env, dead_url, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", dead_url)
    with pytest.raises(WeightsError, match="cannot connect") as e:
        weights.resolve("blob")
    assert dead_url in str(e.value)
    assert_clean(env)


def test_mirrors_in_order_and_every_failure_listed(env, server, dead_url, monkeypatch):
    bad = [dead_url, server.url("missing"), server.url("wrong")]
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", f"{bad[0]}, {bad[1]}\n {bad[2]}")
    with pytest.raises(WeightsError) as e:
        weights.resolve("blob")
    for url in bad:
        assert url in str(e.value)
    assert_clean(env)
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", ",".join(bad[:2] + [server.url("ok/")]))
    assert weights.resolve("blob") == env.cache / BLOB_FILE
    assert server.requests[-1] == f"/ok/{BLOB_FILE}"
    assert_clean(env, [BLOB_FILE])


def test_bad_settings_are_explained(env, monkeypatch):
    monkeypatch.setenv("AEZOO_RETRIES", "many")
    with pytest.raises(WeightsError, match="AEZOO_RETRIES"):
        weights.retries()
    monkeypatch.setenv("AEZOO_TIMEOUT", "0")
    with pytest.raises(WeightsError, match="AEZOO_TIMEOUT"):
        weights.timeout()
    with pytest.raises(WeightsError, match="AEZOO_WEIGHTS_URL"):  # nothing anywhere, no mirror
        weights.resolve("blob")
    with pytest.raises(WeightsError, match="no pretrained weights"):
        weights.resolve("nothing_like_this")


# --------------------------------------------------------------------------- cache and bundle


def test_corrupt_cached_file_is_replaced(env, server, monkeypatch):
    env.cache.mkdir(parents=True)
    (env.cache / BLOB_FILE).write_bytes(b"garbage")
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    assert weights.resolve("blob") == env.cache / BLOB_FILE
    assert_clean(env, [BLOB_FILE])


def test_corrupt_cached_file_is_deleted_even_when_download_fails(env, server, monkeypatch):
    env.cache.mkdir(parents=True)
    (env.cache / BLOB_FILE).write_bytes(BLOB[:-1] + b"x")  # right size, wrong hash
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("missing"))
    with pytest.raises(WeightsError):
        weights.resolve("blob")
    assert_clean(env)


def test_bundled_file_is_used_in_place(env, server, monkeypatch):
    (env.bundle / BLOB_FILE).write_bytes(BLOB)
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    assert weights.resolve("blob") == env.bundle / BLOB_FILE
    assert server.requests == []
    assert_clean(env)  # not copied into the cache


def test_corrupt_bundled_file_falls_back_to_download(env, server, monkeypatch):
    (env.bundle / BLOB_FILE).write_bytes(b"corrupt")
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    assert weights.resolve("blob") == env.cache / BLOB_FILE
    assert_clean(env, [BLOB_FILE])


# --------------------------------------------------------------------------- offline


def test_offline_never_touches_the_network(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    monkeypatch.setenv("AEZOO_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        weights.resolve("blob")
    msg = str(e.value)
    for needle in ("'blob'", BLOB_FILE, str(env.cache), "download-all", "AEZOO_HOME"):
        assert needle in msg
    with pytest.raises(WeightsError, match="AEZOO_OFFLINE"):
        weights.fetch_user_file(server.url("ok") + "/" + BLOB_FILE)
    assert server.requests == []
    assert_clean(env)

    env.cache.mkdir(parents=True)
    (env.cache / BLOB_FILE).write_bytes(BLOB)
    assert weights.resolve("blob") == env.cache / BLOB_FILE
    assert server.requests == []


# --------------------------------------------------------------------------- concurrency

WORKER = textwrap.dedent("""
    import json, os, sys, types
    from pathlib import Path
    # import aezoo.weights without aezoo/__init__ (and so without TensorFlow): keeps this fast
    pkg = types.ModuleType("aezoo")
    pkg.__path__ = [sys.argv[1]]
    sys.modules["aezoo"] = pkg
    import aezoo.weights as w
    table = json.loads(os.environ["TEST_MANIFEST"])
    w._raw_manifest = lambda: table
    w._bundle_dir = lambda: Path(sys.argv[2])
    print(w.resolve("blob"))
""")


def test_concurrent_downloads_end_with_one_valid_file(env, server, monkeypatch):
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("barrier"))
    monkeypatch.setenv("TEST_MANIFEST", json.dumps(env.table))
    monkeypatch.setenv("AEZOO_RETRIES", "1")
    args = [sys.executable, "-c", WORKER, str(Path(weights.__file__).parent), str(env.bundle)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert out.strip() == str(env.cache / BLOB_FILE)
    assert len(server.requests) == 4  # the barrier made all four download at the same time
    assert_clean(env, [BLOB_FILE])


# --------------------------------------------------------------------------- read-only cache


@pytest.fixture
def read_only(monkeypatch):
    """Make a directory tree read-only: chmod 0o555, and where that does not stop
    writes (running as root), refuse writes under it at the os level instead."""
    made = []

    def make(path):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for p in [path, *[q for q in path.rglob("*") if q.is_dir()]]:
            p.chmod(0o555)
            made.append(p)
        probe = path / ".probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            return path  # the kernel refuses: a real read-only directory
        probe.unlink()
        root = os.path.realpath(path)

        def inside(p):
            if isinstance(p, int):
                return False
            real = os.path.realpath(os.fspath(p))
            return real == root or real.startswith(root + os.sep)

        def guard(fn, writes=lambda *a, **k: True):
            def wrapper(p, *args, **kwargs):
                if inside(p) and writes(*args, **kwargs):
                    raise PermissionError(errno.EACCES, "Permission denied (simulated)", os.fspath(p))
                return fn(p, *args, **kwargs)
            return wrapper

        write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        monkeypatch.setattr(os, "open", guard(os.open, lambda flags, *a, **k: flags & write_flags))
        for name in ("mkdir", "unlink", "remove", "rmdir"):
            monkeypatch.setattr(os, name, guard(getattr(os, name)))
        for name in ("replace", "rename"):
            def move(src, dst, *args, _fn=getattr(os, name), **kwargs):
                if inside(src) or inside(dst):
                    raise PermissionError(errno.EACCES, "Permission denied (simulated)", os.fspath(dst))
                return _fn(src, dst, *args, **kwargs)
            monkeypatch.setattr(os, name, move)
        return path

    yield make
    for p in made:
        p.chmod(0o755)


def test_read_only_cache_with_valid_file(env, server, read_only, monkeypatch):
    env.cache.mkdir(parents=True)
    (env.cache / BLOB_FILE).write_bytes(BLOB)
    read_only(env.home)
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    assert weights.resolve("blob") == env.cache / BLOB_FILE
    assert server.requests == []


def test_read_only_cache_with_corrupt_file_downloads_elsewhere(env, server, read_only, monkeypatch):
    env.cache.mkdir(parents=True)
    (env.cache / BLOB_FILE).write_bytes(b"corrupt")
    read_only(env.home)
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    path = weights.resolve("blob")
    assert path.read_bytes() == BLOB
    assert env.home not in path.parents
    assert files_under(env.home) == {f"weights/{BLOB_FILE}"}  # untouched, nothing added
    assert (env.cache / BLOB_FILE).read_bytes() == b"corrupt"
    assert weights.resolve("blob") == path  # reused within the process
    assert len(server.requests) == 1


def test_read_only_missing_cache_uses_bundle_or_temp(env, server, read_only, monkeypatch):
    read_only(env.home)  # AEZOO_HOME exists, read-only, without weights/
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    path = weights.resolve("blob")
    assert path.read_bytes() == BLOB and env.home not in path.parents
    assert files_under(env.home) == set()
    url = server.url("ok") + "/" + BLOB_FILE
    user = weights.fetch_user_file(url)
    assert user.read_bytes() == BLOB and env.home not in user.parents
    monkeypatch.setattr(weights, "_FALLBACK_DIR", None)
    (env.bundle / BLOB_FILE).write_bytes(BLOB)
    assert weights.resolve("blob") == env.bundle / BLOB_FILE


# --------------------------------------------------------------------------- user files


def test_fetch_user_file_local_paths(env, tmp_path):
    good = tmp_path / "mine.weights.h5"
    good.write_bytes(BLOB)
    assert weights.fetch_user_file(str(good)) == good
    assert weights.fetch_user_file(good, sha256=sha(BLOB).upper()) == good
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        weights.fetch_user_file(good, sha256="0" * 64)
    with pytest.raises(WeightsError, match="does not exist"):
        weights.fetch_user_file(tmp_path / "nope.weights.h5")
    other = tmp_path / "model.keras"
    other.write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"\.weights\.h5"):
        weights.fetch_user_file(other)
    with pytest.raises(WeightsError, match="scheme"):
        weights.fetch_user_file("ftp://example.org/a.weights.h5")


def test_fetch_user_file_url(env, server):
    server.files["mine.weights.h5"] = BLOB
    url = server.url("ok") + "/mine.weights.h5"
    path = weights.fetch_user_file(url)
    assert path.read_bytes() == BLOB
    assert path.name == "mine.weights.h5" and env.home / "user" in path.parents
    assert weights.fetch_user_file(url) == path and len(server.requests) == 1  # cached
    assert weights.fetch_user_file(url, sha256=sha(BLOB)) == path and len(server.requests) == 1
    with pytest.raises(WeightsError, match=r"\.weights\.h5"):
        weights.fetch_user_file(server.url("ok") + "/mine.h5")


def test_fetch_user_file_url_hash_checks_leave_nothing(env, server):
    server.files["mine.weights.h5"] = BLOB
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        weights.fetch_user_file(server.url("ok") + "/mine.weights.h5", sha256="0" * 64)
    # a file name listed in the manifest is checked against the manifest's hash
    with pytest.raises(WeightsError, match=sha(BLOB)):
        weights.fetch_user_file(server.url("wrong") + "/" + BLOB_FILE)
    with pytest.raises(WeightsError, match="truncated"):
        weights.fetch_user_file(server.url("truncated") + "/mine.weights.h5")
    assert files_under(env.home) == set()


# --------------------------------------------------------------------------- real models


@pytest.fixture
def tiny(env, server, monkeypatch):
    """A registered tiny dense entry 'tiny_dense' with its weights on the server."""
    registry.register("tiny_dense", "dense", {"input_shape": [8, 8, 1], "latent_dim": 2, "hidden": [4]})
    path = env.tmp / "src" / "tiny_dense.weights.h5"
    path.parent.mkdir()
    registry.build("tiny_dense").save_weights(str(path))
    data = path.read_bytes()
    server.files[path.name] = data
    env.table["tiny_dense"] = record(data, path.name)
    monkeypatch.setenv("AEZOO_WEIGHTS_URL", server.url("ok"))
    return path


def test_load_pretrained_end_to_end(env, server, tiny):
    model = aezoo.load("tiny_dense")
    ref = registry.build("tiny_dense")
    ref.load_weights(str(tiny))
    for a, b in zip(model.get_weights(), ref.get_weights()):
        assert (a == b).all()
    assert (env.cache / tiny.name).read_bytes() == tiny.read_bytes()
    mine = aezoo.load("tiny_dense", pretrained=False, weights=server.url("ok") + "/" + tiny.name)
    assert all((a == b).all() for a, b in zip(mine.get_weights(), ref.get_weights()))


def test_load_into_wraps_mismatch(env, tiny):
    model = registry.build("tiny_dense", hidden=[3])
    with pytest.raises(WeightsError) as e:
        weights.load_into(model, tiny)
    assert str(tiny) in str(e.value) and "tiny_dense" in str(e.value)
    with pytest.raises(WeightsError, match="does not exist"):
        weights.load_into(model, env.tmp / "missing.weights.h5")


def test_verify_reports_every_entry(env, server, tiny, monkeypatch):
    env.table["orphan"] = dict(env.table["blob"])  # valid file, but no such zoo entry
    env.table["orphan"]["file"] = "orphan.weights.h5"
    server.files["orphan.weights.h5"] = BLOB
    env.table["broken"] = record(b"something else", "broken.weights.h5")
    server.files["broken.weights.h5"] = b"something elsE"  # same size, other hash
    rows = {r["name"]: r for r in registry.verify()}
    assert set(rows) == {"blob", "tiny_dense", "orphan", "broken"}
    assert rows["tiny_dense"]["sha256_ok"] and rows["tiny_dense"]["loaded"] and rows["tiny_dense"]["error"] is None
    assert rows["orphan"]["sha256_ok"] and not rows["orphan"]["loaded"] and "orphan" in rows["orphan"]["error"]
    assert not rows["broken"]["sha256_ok"] and "sha256" in rows["broken"]["error"]
    assert rows["blob"]["sha256_ok"] and not rows["blob"]["loaded"]
    assert rows["tiny_dense"]["file"] == tiny.name
    assert registry.verify(["tiny_dense"])[0]["loaded"]


def test_download_all_makes_an_offline_home(env, server, tiny, monkeypatch):
    (env.bundle / BLOB_FILE).write_bytes(BLOB)  # one bundled, one downloaded
    out = env.tmp / "airgap"
    paths = weights.download_all(out)
    assert paths == [out / "weights" / BLOB_FILE, out / "weights" / tiny.name, out / "manifest.json"]
    assert json.loads((out / "manifest.json").read_text()) == env.table
    assert files_under(out) == {"manifest.json", f"weights/{BLOB_FILE}", f"weights/{tiny.name}"}
    n = len(server.requests)
    assert weights.download_all(out) == paths and len(server.requests) == n  # already there

    (env.bundle / BLOB_FILE).unlink()
    monkeypatch.setenv("AEZOO_HOME", str(out))
    monkeypatch.setenv("AEZOO_OFFLINE", "1")
    assert weights.resolve("blob") == out / "weights" / BLOB_FILE
    aezoo.load("tiny_dense")
    assert len(server.requests) == n

    env.table["gone"] = record(b"zzz", "gone.weights.h5")
    monkeypatch.delenv("AEZOO_OFFLINE")
    with pytest.raises(WeightsError, match="gone"):
        weights.download_all(env.tmp / "again")
    assert files_under(env.tmp / "again") == {"manifest.json", f"weights/{BLOB_FILE}", f"weights/{tiny.name}"}


def test_no_pickle():
    source = Path(weights.__file__).read_text()
    assert "pickle" not in source.replace("No pickle", "")
