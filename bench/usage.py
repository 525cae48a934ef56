"""The benches' argument parser: a usage error is one line and exit 2, as in run.py (argparse prints the whole
usage before it), and no abbreviated flag (run.py refuses them too: --size must not be read as --sizes)."""
import argparse
import difflib
import re


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        unknown = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        close = unknown and difflib.get_close_matches(unknown.group(1), list(self._option_string_actions), n=1)
        if close:  # as run.py says it
            message += f" (did you mean {close[0]}?)"
        self.exit(2, f"error: {message}; see {self.prog} --help\n")
