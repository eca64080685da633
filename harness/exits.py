"""The exit codes every `harness` command shares, and the error that means "the user's mistake"."""

from __future__ import annotations

PASSED = 0  # every verdict passed
FAILED = 1  # a verdict failed: a violation, a non-conforming response, a breaking change
USAGE = 2  # a usage or configuration error: the message names what is wrong and where
INTERNAL = 3  # the harness itself failed (a bug): the traceback is written to a file
INTERRUPTED = 130  # Ctrl-C, as shells report it (128 + SIGINT); the report of what ran is written

EXIT_CODES_HELP = """\
exit codes:
  0    passed
  1    the verdict failed (a violation, a non-conforming response, a breaking change)
  2    usage or configuration error (the message names the file, key or line)
  3    the harness itself failed (a bug; the traceback is saved to a file)
  130  interrupted (Ctrl-C); children are stopped and the report of what ran is written
"""


class UsageError(Exception):
    """A mistake the user can fix: exit 2 with this message, never a traceback."""
