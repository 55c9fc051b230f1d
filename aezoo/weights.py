"""Pretrained weights: the manifest, the cache, downloads and verification.

`resolve(name)` finds the pretrained weights of zoo entry `name` and returns
the local path of a file whose sha256 matches the manifest. It looks, in
this order, in

1. the cache: ``$AEZOO_HOME/weights/NAME.weights.h5`` (``AEZOO_HOME``
   defaults to ``~/.cache/aezoo``); a cached file with the wrong hash is
   deleted (when the cache is writable) and the search goes on;
2. the weights bundled with the package (``aezoo/pretrained``), used in place;
3. the mirrors named in ``AEZOO_WEIGHTS_URL`` (one or more base URLs,
   separated by whitespace or commas): ``BASE/NAME.weights.h5`` is
   downloaded, with retries, into a temporary file next to its destination,
   checked (byte count and sha256), then moved into place with
   ``os.replace``. Whatever goes wrong, no partial or corrupt file is left.

Several processes resolving the same entry at once each download into their
own temporary file; ``os.replace`` is atomic, so the cache ends with exactly
one complete file. A read-only cache is never fatal: a download then goes to
a temporary directory of this process instead.

Environment:
    AEZOO_HOME: cache directory (default ``~/.cache/aezoo``).
    AEZOO_WEIGHTS_URL: mirror base URLs (whitespace or comma separated).
    AEZOO_OFFLINE: ``1`` (or true/yes/on) never touches the network (parsed
        by `aezoo._io.offline`, the same for datasets).
    AEZOO_RETRIES: attempts per mirror (default `DEFAULT_RETRIES`).
    AEZOO_TIMEOUT: seconds a connection or read may block (default
        `DEFAULT_TIMEOUT`).
    AEZOO_DEADLINE: seconds one attempt at one file may take in all (default
        `DEFAULT_DEADLINE`): a mirror trickling bytes cannot hang a download.

For an air-gapped machine: run ``aezoo.weights.download_all(DIR)`` (or
``aezoo download-all DIR``) on a connected machine, copy DIR over and point
``AEZOO_HOME`` at it.

No pickle is involved anywhere: weights are ``.weights.h5`` files and the
manifest is JSON.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

from aezoo import _io
from aezoo.errors import WeightsError

ENV_HOME = "AEZOO_HOME"
ENV_URL = "AEZOO_WEIGHTS_URL"
ENV_OFFLINE = "AEZOO_OFFLINE"
ENV_RETRIES = "AEZOO_RETRIES"
ENV_TIMEOUT = "AEZOO_TIMEOUT"
ENV_DEADLINE = "AEZOO_DEADLINE"

DEFAULT_HOME = "~/.cache/aezoo"
DEFAULT_MIRRORS = ()       # base URLs used when AEZOO_WEIGHTS_URL is unset
DEFAULT_RETRIES = 3        # attempts per mirror
DEFAULT_TIMEOUT = 30.0     # seconds, per blocking socket operation
DEFAULT_DEADLINE = 3600.0  # seconds for one whole file (one attempt), however the bytes trickle in
RETRY_BACKOFF = 0.5        # seconds before the 2nd attempt; doubles after each failure
CHUNK_SIZE = 1 << 16
SUFFIX = ".weights.h5"
USER_AGENT = "aezoo-weights/1"

_FALLBACK_DIR = None       # per-process temporary directory used when the cache is read-only


# --------------------------------------------------------------------------- manifest


def records() -> dict:
    """name -> {version (str) -> record}, from pretrained/manifest.json (package data).

    A record written before versions existed ({"file": ...} directly under
    the name) reads as version 1.
    """
    return by_version(_raw_manifest())


def by_version(manifest: dict) -> dict:
    """A manifest's {name: {version: record}}, reading a pre-versions record as version 1."""
    return {name: ({"1": entry} if "file" in entry else entry) for name, entry in manifest.items()}


def _raw_manifest():
    return json.loads(_bundle_dir().joinpath("manifest.json").read_text())


def published_versions(name: str) -> list[int]:
    """The versions of `name` that have pretrained weights, oldest first."""
    return sorted(int(v) for v in records().get(name, {}))


def record(name: str, version: int | None = None) -> dict | None:
    """The card of `name` at `version` (None: the newest published), or None."""
    versions = records().get(name) or {}
    if not versions:
        return None
    key = str(max(map(int, versions)) if version is None else int(version))
    found = versions.get(key)
    return None if found is None else {**found, "version": int(key)}


def manifest() -> dict:
    """name -> the card of its newest published version (what `aezoo.load(name)` gives)."""
    return {name: record(name) for name in records()}


def _bundle_dir():
    """The package data directory holding the bundled weights (a Traversable)."""
    return _io.pretrained_files()


def _record(name, version=None):
    found = record(name, version)
    if found is None:
        which = f"{name!r}" if version is None else f"{name!r} version {version}"
        raise WeightsError(
            f"no pretrained weights for {which} yet; use aezoo.load({name!r}, pretrained=False) "
            f"for a fresh model, or train them with: aezoo train {name}"
            + ("" if version is None else f" --version {version}")
        )
    record_ = found
    file = record_.get("file")
    if (not isinstance(file, str) or not file.endswith(SUFFIX) or os.path.basename(file) != file
            or "\\" in file or file.startswith(".")):
        raise WeightsError(f"manifest entry {name!r} has a bad file name {file!r}; expected NAME{SUFFIX}.")
    if not isinstance(record_.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", record_["sha256"]):
        raise WeightsError(f"manifest entry {name!r} has no valid sha256 (64 lowercase hex digits).")
    return record_


# --------------------------------------------------------------------------- settings


def home():
    """The cache root: $AEZOO_HOME, or ~/.cache/aezoo."""
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser()


def cache_dir():
    """Where resolve() keeps downloaded pretrained weights: $AEZOO_HOME/weights."""
    return home() / "weights"


def offline():
    """True when AEZOO_OFFLINE asks never to touch the network (see `aezoo._io.offline`)."""
    return _io.offline()


def mirrors():
    """Mirror base URLs, from AEZOO_WEIGHTS_URL (whitespace or comma separated)."""
    value = os.environ.get(ENV_URL)
    if value is None:
        return list(DEFAULT_MIRRORS)
    return [u for u in re.split(r"[\s,]+", value.strip()) if u]


def _env_number(var, default, cast, minimum):
    value = os.environ.get(var)
    if value is None or not value.strip():
        return default
    try:
        number = cast(value)
    except ValueError:
        raise WeightsError(f"{var}={value!r} is not a number.") from None
    if number < minimum:
        raise WeightsError(f"{var}={value!r} must be at least {minimum}.")
    return number


def retries():
    """Attempts per mirror (AEZOO_RETRIES, default DEFAULT_RETRIES)."""
    return _env_number(ENV_RETRIES, DEFAULT_RETRIES, int, 1)


def timeout():
    """Seconds a connection or a read may block (AEZOO_TIMEOUT, default DEFAULT_TIMEOUT)."""
    return _env_number(ENV_TIMEOUT, DEFAULT_TIMEOUT, float, 0.001)


def deadline():
    """Seconds one attempt at one file may take in all (AEZOO_DEADLINE, default DEFAULT_DEADLINE)."""
    return _env_number(ENV_DEADLINE, DEFAULT_DEADLINE, float, 0.001)


# --------------------------------------------------------------------------- files


def sha256(path):
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_file_sha256 = sha256  # fetch_user_file's `sha256=` parameter shadows the function


def _check(path, record):
    """None when `path` matches the record (bytes and sha256), else why not."""
    size = path.stat().st_size
    if "bytes" in record and size != int(record["bytes"]):
        return f"{size} bytes, expected {record['bytes']}"
    actual = sha256(path)
    if actual != record["sha256"]:
        return f"sha256 {actual} does not match the expected {record['sha256']}"
    return None


def _discard_if_unchanged(path, stat):
    """Delete a corrupt file, unless another process has replaced it meanwhile."""
    try:
        now = os.stat(path)
        if (now.st_ino, now.st_mtime_ns, now.st_size) == (stat.st_ino, stat.st_mtime_ns, stat.st_size):
            os.unlink(path)
            return True
    except OSError:
        pass
    return False


def _writable_dir(directory):
    """Create `directory` if needed; True when files can be created in it."""
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".aezoo-probe-"):
            pass
        return True
    except OSError:
        return False


def _fallback_dir():
    """A private temporary directory of this process, for a read-only cache."""
    global _FALLBACK_DIR
    if _FALLBACK_DIR is None or not os.path.isdir(_FALLBACK_DIR):
        _FALLBACK_DIR = tempfile.mkdtemp(prefix="aezoo-weights-")
        atexit.register(shutil.rmtree, _FALLBACK_DIR, True)
    return Path(_FALLBACK_DIR)


def _atomic_copy(src, dest, record=None):
    """Copy src to dest through a temporary file in dest's directory."""
    dest = Path(dest)
    try:
        return _io.copy_file(src, dest, check=None if record is None else (lambda tmp: _check(tmp, record)))
    except OSError as e:
        raise WeightsError(str(e)) from e


# --------------------------------------------------------------------------- downloads


class _Retryable(Exception):
    """A failure worth another attempt at the same mirror."""


class _Permanent(Exception):
    """A failure that another attempt at the same mirror would repeat."""


def _progress(total, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                leave=False, disable=None)


def _download_once(url, dest, expected_sha256=None, expected_bytes=None, timeout_s=None, deadline_s=None):
    """Download url to dest atomically; raise _Retryable/_Permanent on failure.

    The body goes into a temporary file in dest's directory, which is checked
    (Content-Length, expected byte count, sha256) and then os.replace'd onto
    dest. On any failure the temporary file is removed. A hostile or broken
    mirror cannot fill the disk or hang the caller: with a known size, at most
    size + 1 bytes are read (a longer body is cut off and rejected), and the
    whole file must arrive within `deadline_s` seconds (each read is further
    bounded by `timeout_s`).
    """
    import http.client  # the network stack loads when a download starts
    import urllib.error
    import urllib.request

    dest = Path(dest)
    started = time.monotonic()
    limit = None if expected_bytes is None else int(expected_bytes)
    bar = None
    try:
        with _io.open_temp(dest) as tmp:
            h = hashlib.sha256()
            n = 0
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            try:
                response = urllib.request.urlopen(request, timeout=timeout_s)
            except urllib.error.HTTPError as e:
                e.close()
                why = f"HTTP {e.code} {e.reason}"
                if e.code >= 500 or e.code in (408, 425, 429):
                    raise _Retryable(why) from None
                raise _Permanent(why) from None
            except urllib.error.URLError as e:
                raise _Retryable(f"cannot connect: {e.reason}") from None
            except (OSError, http.client.HTTPException) as e:  # timeouts, resets, bad status lines
                raise _Retryable(_describe(e)) from None
            with response:
                length = response.headers.get("Content-Length")
                length = int(length) if length and length.isdigit() else None
                if limit is not None and length is not None and length != limit:
                    raise _Permanent(f"{dest.name}: the server announces {length} bytes, expected {limit}")
                bar = _progress(length or expected_bytes, dest.name)
                try:
                    while True:
                        if deadline_s is not None and time.monotonic() - started > deadline_s:
                            raise _Retryable(f"deadline of {deadline_s:g} s passed after {n} bytes "
                                             f"({ENV_DEADLINE})")
                        want = CHUNK_SIZE if limit is None else min(CHUNK_SIZE, limit + 1 - n)
                        chunk = response.read1(want)  # returns after one read: a trickle cannot block the deadline
                        if not chunk:
                            break
                        tmp.write(chunk)
                        h.update(chunk)
                        n += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                        if limit is not None and n > limit:
                            raise _Permanent(f"{dest.name}: the body is longer than the expected {limit} bytes; "
                                             f"stopped reading at {n}")
                except (_Retryable, _Permanent):
                    raise
                except Exception as e:  # timeouts, resets, http.client.IncompleteRead, ...
                    raise _Retryable(f"download interrupted after {n} bytes: {_describe(e)}") from None
            if length is not None and n != length:
                raise _Retryable(f"truncated body: received {n} of {length} bytes")
            if limit is not None and n != limit:
                raise _Permanent(f"{dest.name}: received {n} bytes, expected {expected_bytes}")
            actual = h.hexdigest()
            if expected_sha256 is not None and actual != expected_sha256:
                raise _Permanent(f"{dest.name}: sha256 mismatch: expected {expected_sha256}, got {actual}")
            _io.commit(tmp, dest)
    finally:
        if bar is not None:
            bar.close()
    return dest


def clean_partial(directory):
    """Remove the temporary files that killed downloads left in `directory`
    (their writer is dead, or they are older than `aezoo._io.STALE_AFTER_S`;
    also the `.NAME.XXXX.part` files of aezoo before 0.2 once that old)."""
    return _io.remove_stale(directory, extra=lambda n: n.startswith(".") and n.endswith(".part"))


def _describe(e):
    if isinstance(e, TimeoutError) or "timed out" in str(e):
        return f"timed out ({e})" if str(e) else "timed out"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _download(urls, dest, expected_sha256=None, expected_bytes=None, what=None):
    """Try each URL (with retries) until one gives a valid dest; else WeightsError."""
    attempts = retries()
    timeout_s = timeout()
    deadline_s = deadline()
    clean_partial(Path(dest).parent)
    failures = []
    for url in urls:
        reasons = []
        for attempt in range(1, attempts + 1):
            try:
                return _download_once(url, dest, expected_sha256, expected_bytes, timeout_s, deadline_s)
            except _Permanent as e:
                reasons.append(str(e))
                break
            except _Retryable as e:
                reasons.append(str(e))
                if attempt < attempts:
                    time.sleep(RETRY_BACKOFF * 2 ** (attempt - 1))
            except OSError as e:  # local: cannot create, write or move the file
                raise WeightsError(f"cannot write {dest}: {e}") from e
        tries = f"{len(reasons)} attempt{'s' if len(reasons) > 1 else ''}"
        failures.append(f"  - {url}: {reasons[-1]} ({tries}" +
                        (f"; earlier: {'; '.join(dict.fromkeys(reasons[:-1]))})" if len(reasons) > 1 else ")"))
    raise WeightsError(
        f"could not download {what or Path(dest).name}; every mirror failed:\n" + "\n".join(failures)
    )


def _mirror_urls(record):
    return [base.rstrip("/") + "/" + urllib.parse.quote(record["file"]) for base in mirrors()]


def _offline_error(name, record, looked):
    return WeightsError(
        f"pretrained weights for {name!r} ({record['file']}) are neither cached nor bundled, and "
        f"{ENV_OFFLINE} is set, so nothing was downloaded. Looked in:\n"
        + "\n".join(f"  - {x}" for x in looked)
        + f"\nTo get them: on a connected machine run `aezoo download-all DIR` "
        f"(or aezoo.weights.download_all(DIR)), copy DIR here and set {ENV_HOME}=DIR; "
        f"or unset {ENV_OFFLINE} and set {ENV_URL} to a mirror."
    )


# --------------------------------------------------------------------------- public API


def _resolve_local(name, record):
    """(path, looked): a verified cached or bundled file, or None and where we looked."""
    file = record["file"]
    looked = []

    # 1. the cache (and this process's fallback directory for a read-only cache)
    candidates = [cache_dir() / file]
    if _FALLBACK_DIR is not None:
        candidates.append(Path(_FALLBACK_DIR) / file)
    for path in candidates:
        try:
            stat = os.stat(path)
        except OSError:
            looked.append(f"{path} (not there)")
            continue
        problem = _check(path, record)
        if problem is None:
            return path, looked
        removed = _discard_if_unchanged(path, stat)
        looked.append(f"{path} ({problem}; {'deleted' if removed else 'could not delete it'})")

    # 2. the bundled package data, used in place
    bundled = _bundle_dir().joinpath(file)
    if bundled.is_file():
        path = Path(str(bundled))
        problem = _check(path, record) if path.is_file() else "not a plain file"
        if problem is None:
            return path, looked
        looked.append(f"{path} (bundled: {problem})")
    else:
        looked.append(f"{bundled} (not bundled)")
    return None, looked


def resolve(name: str, version: int | None = None) -> Path:
    """Local path of verified pretrained weights for zoo entry `name` at
    `version` (default: the newest published).

    Looks in the cache, then the bundled package data, then downloads from
    the mirrors (unless AEZOO_OFFLINE). Raises WeightsError when none works.
    """
    record = _record(name, version)
    path, looked = _resolve_local(name, record)
    if path is not None:
        return path
    if offline():
        raise _offline_error(name, record, looked)
    urls = _mirror_urls(record)
    if not urls:
        raise _no_mirror_error(name, record, looked)
    target_dir = cache_dir() if _writable_dir(cache_dir()) else _fallback_dir()
    return _download(urls, target_dir / record["file"], record["sha256"], record.get("bytes"),
                     what=f"pretrained weights for {name!r} ({record['file']})")


def _no_mirror_error(name, record, looked):
    return WeightsError(
        f"pretrained weights for {name!r} ({record['file']}) are neither cached nor bundled and no "
        f"mirror is set. Looked in:\n" + "\n".join(f"  - {x}" for x in looked)
        + f"\nSet {ENV_URL} to one or more base URLs, or {ENV_HOME} to a directory made by "
        f"`aezoo download-all DIR`."
    )


def fetch_user_file(path_or_url, sha256: str | None = None) -> Path:
    """A local path to the user's weights file (a local path or an http(s) URL).

    A local path must exist and end in '.weights.h5'. A URL is downloaded
    (atomically, with retries) into $AEZOO_HOME/user/; its sha256 is checked
    when given, or when its file name is one of the manifest's files.
    """
    try:
        text = os.fspath(path_or_url)
    except TypeError:
        raise WeightsError(f"weights= takes a path or an http(s) URL; got {path_or_url!r}.") from None
    scheme = urllib.parse.urlsplit(text).scheme.lower() if isinstance(text, str) else ""
    if scheme in ("http", "https"):
        return _fetch_url(text, sha256)
    if scheme and len(scheme) > 1:
        raise WeightsError(f"unsupported URL scheme {scheme!r} in {text!r}; use http(s) or a local path.")
    path = Path(text).expanduser()
    if not path.name.endswith(SUFFIX):
        raise WeightsError(
            f"weights file {path} must end in '{SUFFIX}' (Keras 3 weights); for a whole saved model "
            f"(.keras) use keras.saving.load_model."
        )
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist." if not path.exists()
                           else f"weights file {path} is not a file.")
    if sha256 is not None:
        actual = _file_sha256(path)
        if actual != sha256.lower():
            raise WeightsError(f"{path}: sha256 mismatch: expected {sha256.lower()}, got {actual}")
    return path


def _fetch_url(url, expected=None):
    filename = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not filename.endswith(SUFFIX) or filename.startswith("."):
        raise WeightsError(f"the URL {url} must name a '{SUFFIX}' file (Keras 3 weights).")
    expected_bytes = None
    if expected is None:
        for record in (r for versions in records().values() for r in versions.values()):
            if isinstance(record, dict) and record.get("file") == filename:
                expected, expected_bytes = record.get("sha256"), record.get("bytes")
                break
    expected = expected.lower() if expected else None
    # one sub-directory per URL, so two URLs with the same file name do not collide
    subdir = hashlib.sha256(url.encode()).hexdigest()[:16]
    candidates = [home() / "user" / subdir / filename]
    if _FALLBACK_DIR is not None:
        candidates.append(Path(_FALLBACK_DIR) / "user" / subdir / filename)
    for path in candidates:
        if path.is_file():
            if expected is None or _file_sha256(path) == expected:
                return path
            _discard_if_unchanged(path, os.stat(path))
    if offline():
        raise WeightsError(
            f"{url} is not cached (looked in {candidates[0]}) and {ENV_OFFLINE} is set; download it on "
            f"a connected machine and pass the local path instead."
        )
    target = candidates[0]
    if not _writable_dir(target.parent):
        target = _fallback_dir() / "user" / subdir / filename
        target.parent.mkdir(parents=True, exist_ok=True)
    return _download([url], target, expected, expected_bytes, what=url)


def load_into(model, path: str | os.PathLike):
    """Load a .weights.h5 file into `model`; WeightsError (naming both) on failure."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"cannot load {path} into model {model.name!r}: the file does not exist.")
    try:
        model.load_weights(str(path))
    except Exception as e:
        raise WeightsError(
            f"cannot load {path} into model {model.name!r} ({type(model).__name__}): {e}"
        ) from e
    return model


def download_all(directory: str | os.PathLike, names: list[str] | None = None) -> list[Path]:
    """Put verified weights of every manifest entry (or of `names`) into `directory`.

    The layout is the cache's: ``directory/weights/NAME.weights.h5`` plus
    ``directory/manifest.json``, so that ``AEZOO_HOME=directory`` works on a
    machine without network. Files come from the cache, the bundle or the
    mirrors. Returns the list of paths written (weights in manifest order,
    then manifest.json). Raises WeightsError after trying every entry if
    some could not be fetched.
    """
    directory = Path(directory).expanduser()
    weights_dir = directory / "weights"
    try:
        weights_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create {weights_dir}: {e}") from e
    table = records()
    names = list(table) if names is None else list(names)
    paths, failures = [], []
    for name, version in ((n, int(v)) for n in names for v in (table.get(n) or {None: None})):
        try:
            record = _record(name, version)
            dest = weights_dir / record["file"]
            if dest.is_file() and _check(dest, record) is None:
                paths.append(dest)
                continue
            source, looked = _resolve_local(name, record)
            if source is not None:
                if Path(source).resolve() != dest.resolve():
                    _atomic_copy(source, dest, record)
            else:
                if offline():
                    raise _offline_error(name, record, looked)
                urls = _mirror_urls(record)
                if not urls:
                    raise _no_mirror_error(name, record, looked)
                _download(urls, dest, record["sha256"], record.get("bytes"),
                          what=f"pretrained weights for {name!r} ({record['file']})")
            paths.append(dest)
        except (WeightsError, OSError, TypeError) as e:
            failures.append(f"{name}: {e}")
    manifest_path = directory / "manifest.json"
    _io.write_text(manifest_path, json.dumps(_raw_manifest(), indent=2, sort_keys=True) + "\n")
    paths.append(manifest_path)
    if failures:
        raise WeightsError(f"download_all({directory}): {len(failures)} of {len(names)} entries failed:\n"
                           + "\n".join(f"  - {f}" for f in failures))
    return paths
