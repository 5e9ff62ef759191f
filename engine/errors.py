"""Error types for mistakes in user input.

Every problem a user can fix (a config typo, a malformed data line, a checkpoint
that does not fit the model) is raised as one of these, with a message naming
the file and line, the config key, or the variable. Command-line entry points
print the message alone, without a traceback, and exit with status 2.
"""

import errno
import os


class PipelineError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""


class ConfigError(PipelineError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


class DataError(PipelineError):
    """A data or vocabulary file cannot be used (names the file and, where known, the line)."""


class CheckpointError(PipelineError):
    """A checkpoint or model directory does not match the program that loads it."""


class StorageError(PipelineError):
    """A file could not be written (a full disk, a quota, a file-size limit, a read-only or forbidden place)."""


# What a write fails with when the place, not the program, is at fault.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
_ACCESS_ERRNOS = (errno.EACCES, errno.EPERM)


def storage_error(exc: BaseException, target, intact: str = "") -> StorageError | None:
    """`exc` as one line naming `target`, the cause and (`intact`) what is still whole, when it is a failed
    write of `target` (or of anything, for a full disk, a quota or a size limit); None otherwise."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    written = exc.errno in WRITE_ERRNOS or (exc.errno in _ACCESS_ERRNOS and exc.filename is not None
                                            and str(exc.filename).startswith(str(target).rsplit("/", 1)[0]))
    if not written:
        return None
    return StorageError(f"cannot write {target}: {os.strerror(exc.errno)}" + (f"; {intact}" if intact else ""))


def listing(names: list[str], limit: int = 8) -> str:
    """Names for an error message: the first `limit`, then how many more."""
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
