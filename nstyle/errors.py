"""The two kinds of failure a user can meet; run.py turns them into one line and an exit code."""


class NStyleError(Exception):
    """A failure the user can fix; the message names the problem and the fix. Exit code 1."""

    exit_code = 1


class UsageError(NStyleError):
    """Bad command-line input. Exit code 2, like argparse."""

    exit_code = 2


class RuntimeFailure(NStyleError):
    """Something went wrong while running (missing weights, unreadable file, device trouble)."""

    exit_code = 1
