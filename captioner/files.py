"""Writing files so that nobody ever reads half of one: write beside the target, then rename over it."""

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` to a fresh file beside `path`, then `os.replace` it onto `path`; the temporary file never stays.

    The temporary file is created by `write` itself, so it gets the usual permissions (the process umask), unlike a
    `tempfile.mkstemp` file, which is readable by its owner only.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
