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


SETUP_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -r requirements.lock"


def missing_dependency_line(error, command):
    """The one line for a package that is not installed (ModuleNotFoundError): usually the venv is not in use."""
    return (f"error: the Python package {error.name!r} is missing: run {command} with the project's venv "
            f"(.venv/bin/python {command}, or `source .venv/bin/activate` first); set it up with: {SETUP_COMMAND}")
