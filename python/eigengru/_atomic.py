"""Writing a file so that an interrupted write never leaves a truncated one in its place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def replace_atomically(path: str, write: Callable[[str], None]) -> None:
    """``write(temporary)`` writes the whole file at a temporary path beside ``path``; it is then
    flushed to disk and renamed into place. On failure the temporary file is removed and
    ``path`` is left as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".eigengru-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
