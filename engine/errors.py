"""Error types for mistakes in user input.

Every problem a user can fix (a config typo, a malformed data line, a checkpoint
that does not fit the model) is raised as one of these, with a message naming
the file and line, the config key, or the variable. Command-line entry points
print the message alone, without a traceback, and exit with status 2.
"""


class PipelineError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""


class ConfigError(PipelineError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


class DataError(PipelineError):
    """A data or vocabulary file cannot be used (names the file and, where known, the line)."""


class CheckpointError(PipelineError):
    """A checkpoint or model directory does not match the program that loads it."""


def listing(names: list[str], limit: int = 8) -> str:
    """Names for an error message: the first `limit`, then how many more."""
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
