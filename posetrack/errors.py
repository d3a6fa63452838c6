"""The one exception type users see.

Library code raises :class:`PosetrackError` (or a subclass) for anything a user can fix: a missing
file, malformed input, a bad setting. The CLI turns it into a single line on stderr and a non-zero
exit code; anything else is a bug and keeps its traceback.
"""


class PosetrackError(Exception):
    """A problem with the user's input or settings, stated in one line."""


class FormatError(PosetrackError):
    """A file that exists but does not hold what it should (bad JSON, wrong shapes, bad ids)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
