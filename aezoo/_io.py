"""Paths inside the package, atomic writes, version records, and the settings
that several modules read (one parsing each).

Everything that aezoo writes goes through here: a temporary file in the
destination's directory, then `os.replace`, so a reader never sees half a
file and a failure leaves nothing behind. Files get the permissions that
`open()` would give them (0o666 minus the umask), not the 0o600 of
`tempfile.mkstemp`.

Package data is found with `importlib.resources`, so it works in a
non-editable install (site-packages) as well as in a source checkout.

This module imports no TensorFlow and no Keras: the CLI's fast commands use it.

Example:
    >>> from aezoo import _io
    >>> _io.write_json("runs/x/summary.json", {"loss": 0.1})
    >>> _io.pretrained_dir() / "manifest.json"
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

AEZOO_VERSION = "0.1.0"  # aezoo.__version__ (also in setup.cfg)
ENV_OFFLINE = "AEZOO_OFFLINE"
TRUE_VALUES = ("1", "true", "yes", "on")
FALSE_VALUES = ("", "0", "false", "no", "off")

# Temporary files and work directories carry this mark, the host and the pid of
# their writer, so a later run can tell a stale one (its writer is dead, or it
# is older than STALE_AFTER_S) from one that another process is still writing.
TMP_MARK = ".aezoo-tmp"
STALE_AFTER_S = 24 * 3600.0

# Packages whose versions every record (training, evaluation, export) carries.
VERSION_PACKAGES = ("numpy", "keras", "tensorflow", "tensorflow-probability", "jax", "tf2onnx", "onnx",
                    "onnxruntime", "ai-edge-litert")


# --------------------------------------------------------------------------- settings


def env_flag(name: str, default: bool = False) -> bool:
    """A yes/no environment variable: 1/true/yes/on or 0/false/no/off (any case).

    Raises:
        AezooError: any other value (a typo should not silently mean "no").
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    from aezoo.errors import AezooError

    raise AezooError(f"{name}={raw!r}: expected one of {', '.join(TRUE_VALUES)} (on) or "
                     f"{', '.join(v for v in FALSE_VALUES if v)} (off).")


def offline() -> bool:
    """True when AEZOO_OFFLINE asks never to touch the network (datasets and weights alike).

    Example:
        >>> os.environ["AEZOO_OFFLINE"] = "yes"; offline()
        True
    """
    return env_flag(ENV_OFFLINE)


# --------------------------------------------------------------------------- package data


def package_file(*parts: str):
    """A file shipped inside the `aezoo` package (an importlib.resources Traversable).

    Example:
        >>> json.loads(package_file("zoo.json").read_text())
    """
    from importlib import resources

    return resources.files("aezoo").joinpath(*parts)


def pretrained_files():
    """The bundled pretrained data (weights, manifest.json, benchmark.json) as a Traversable."""
    from importlib import resources

    return resources.files("aezoo.pretrained")


def pretrained_dir() -> Path:
    """The bundled pretrained data as a directory on disk: `pretrained/` in a
    source checkout, `site-packages/aezoo/pretrained` in an installed wheel.

    Raises:
        FileNotFoundError: the package is not installed as plain files (e.g. a zip).
    """
    path = Path(str(pretrained_files()))
    if not path.is_dir():
        raise FileNotFoundError(f"aezoo's pretrained data is not a directory on disk ({path}).")
    return path


# --------------------------------------------------------------------------- file modes


def umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no read-only interface elsewhere: set and restore at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 minus the umask."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """The mode `os.mkdir` gives a new directory: 0o777 minus the umask."""
    return 0o777 & ~umask()


# --------------------------------------------------------------------------- temporary names


def _host() -> str:
    import socket

    return socket.gethostname().split(".")[0] or "host"


def _owner_tag() -> str:
    return f"{_host()}-{os.getpid()}"


def temp_name(final_name: str, suffix: str = "") -> str:
    """A hidden temporary name for `final_name`, marked with this host and pid."""
    token = os.urandom(4).hex()
    return f".{final_name}.{_owner_tag()}.{token}{TMP_MARK}{suffix}"


def _writer_alive(name: str) -> bool:
    """Whether the writer named in a temporary name still runs (True when unsure)."""
    try:
        tag = name[:name.index(TMP_MARK)].rsplit(".", 2)[-2]
        host, pid = tag.rsplit("-", 1)
        pid = int(pid)
    except (ValueError, IndexError):
        return True
    if host != _host():
        return True  # another machine's writer (a shared cache): only age decides
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale(directory: str | os.PathLike, older_than: float = STALE_AFTER_S,
                 extra: Callable[[str], bool] | None = None) -> list[Path]:
    """Delete the leftovers of killed writers in `directory`: files and
    directories whose name carries TMP_MARK (or matches `extra`) and whose
    writer is dead or that are older than `older_than` seconds.

    Returns the paths removed. Never raises for a directory that is missing or
    not writable.
    """
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        marked = TMP_MARK in entry.name
        if not (marked or (extra is not None and extra(entry.name))):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age < older_than and (not marked or _writer_alive(entry.name)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def make_work_dir(parent: str | os.PathLike, final_name: str) -> str:
    """A private work directory in `parent` for building `final_name` (removed by the caller;
    `remove_stale` removes it after a kill)."""
    path = os.path.join(os.fspath(parent), temp_name(final_name, ".work"))
    os.mkdir(path, 0o700)
    return path


# --------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", mode: int | None = None) -> Iterator[str]:
    """Yield a temporary path beside `path`; when the block ends without an
    error it gets `mode` (default: what the umask allows) and replaces `path`.
    On any error the temporary file is removed and `path` is untouched.

    `suffix` ends the temporary name (e.g. ".weights.h5" for Keras, ".png").

    Example:
        >>> with atomic_path("out/model.weights.h5", suffix=".weights.h5") as tmp:
        ...     model.save_weights(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temp_name(path.name, suffix)
    try:
        yield str(tmp)
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def install(staged: str | os.PathLike, path: str | os.PathLike, work: str | os.PathLike) -> None:
    """Move a finished `staged` file or directory to `path`, replacing what is there; a
    directory being replaced is set aside in `work` first and restored if the move fails."""
    staged, path = os.fspath(staged), os.fspath(path)
    if os.path.isdir(staged) and os.path.isdir(path):
        backup = os.path.join(os.fspath(work), "previous")
        os.rename(path, backup)
        try:
            os.rename(staged, path)
        except BaseException:
            os.rename(backup, path)
            raise
    else:
        os.replace(staged, path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (see `atomic_path`).

    Example:
        >>> write_text("README.md", "# hello\\n")
    """
    return write_bytes(path, text.encode("utf-8"))


def to_json(data: Any) -> str:
    """The JSON text aezoo writes: indented, floats for numpy scalars, a final newline."""
    return json.dumps(data, indent=2, default=_json_default) + "\n"


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return float(value)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as JSON atomically.

    Example:
        >>> write_json("runs/x/train_metrics.json", {"loss": [0.3, 0.2]})
    """
    return write_text(path, to_json(data))


def save_weights(model, path: str | os.PathLike) -> Path:
    """`model.save_weights` into a temporary file beside `path`, then rename.

    Example:
        >>> save_weights(model, "runs/conv_mnist/conv_mnist.weights.h5")
    """
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
    return Path(path)


def copy_file(src: str | os.PathLike, dest: str | os.PathLike,
              check: Callable[[Path], str | None] | None = None) -> Path:
    """Copy `src` to `dest` atomically; `check(tmp_path)` may return a problem
    (a string), which aborts the copy with OSError and leaves `dest` untouched."""
    with atomic_path(dest) as tmp:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        problem = check(Path(tmp)) if check is not None else None
        if problem:
            raise OSError(f"copy of {src} to {dest}: {problem}")
    return Path(dest)


@contextlib.contextmanager
def open_temp(dest: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """An open temporary file beside `dest` (for streaming writes such as
    downloads); the caller moves it into place with `commit(f, dest)`. The file
    is removed if the block raises or it was not committed."""
    dest = Path(dest)
    name = dest.parent / temp_name(dest.name, ".part")
    f = open(name, mode.replace("w", "x"), opener=lambda p, flags: os.open(p, flags, 0o600))
    try:
        yield f
    finally:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def commit(f, dest: str | os.PathLike) -> Path:
    """Flush, fsync and move an `open_temp` file onto `dest` with the umask's mode."""
    f.flush()
    os.fsync(f.fileno())
    f.close()
    os.chmod(f.name, file_mode())
    os.replace(f.name, dest)
    return Path(dest)


# --------------------------------------------------------------------------- versions


def versions() -> dict:
    """One record of what produced a result: Python, aezoo, the Keras backend
    and the versions of the packages that matter (None: not installed).

    Read from package metadata: importing nothing heavy.

    Example:
        >>> versions()["keras"]
        '3.15.1'
    """
    import importlib.metadata
    import platform

    out = {"python": platform.python_version(), "aezoo": AEZOO_VERSION, "backend": _backend()}
    for package in VERSION_PACKAGES:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def _backend() -> str:
    import sys

    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")
