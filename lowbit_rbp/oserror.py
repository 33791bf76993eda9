"""Operating-system errors as one line for a user: what went wrong, naming the path it is about."""
from __future__ import annotations

import errno
from pathlib import Path

# Errors of writing a file that do not carry its name (raised by write or close, not by open).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)


def os_error_line(exc: OSError, writing=None) -> str:
    """One line for ``exc`` naming its path; ``writing``: the path a command was writing, named
    when a write error (disk full) carries none. Without a path: its message (a scheduler's address)."""
    path = exc.filename
    if path is None:
        where = f" (writing {str(writing)!r})" if writing and exc.errno in WRITE_ERRNOS else ""
        return str(exc.strerror or exc) + where
    if isinstance(exc, FileExistsError) and not Path(path).is_dir():
        return f"{str(path)!r} is a file, not a folder: cannot write under it"
    if isinstance(exc, NotADirectoryError):
        return f"{str(path)!r}: a part of this path is a file, not a folder"
    return f"{str(path)!r}" + (f" -> {str(exc.filename2)!r}" if exc.filename2 else "") + f": {exc.strerror or exc}"
