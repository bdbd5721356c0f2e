"""Small file utilities shared by the store and the report writer."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> None:
    """Write via a temp file in the same directory, fsync, then rename: a reader, or a kill
    mid-write, sees either the old file or the whole new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


LEVEL_CACHE_ENV = "INNERLAB_LEVEL_DIR"


def level_cache_dir() -> Path | None:
    """Where generated level sets are kept between runs: $INNERLAB_LEVEL_DIR, else
    $XDG_CACHE_HOME/innerlab/levels (~/.cache/innerlab/levels); None (generate every time) if
    INNERLAB_LEVEL_DIR is off/0/none/empty. Safe to delete: a level set is a pure function of
    its generator's arguments and is regenerated when missing."""
    if LEVEL_CACHE_ENV in os.environ:
        value = os.environ[LEVEL_CACHE_ENV]
        return None if value.strip().lower() in ("", "0", "off", "none", "false") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "innerlab" / "levels"
