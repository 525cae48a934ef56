"""The benches' argument parser: a usage error is one line and exit 2, as in run.py (argparse prints the whole
usage before it), and no abbreviated flag (run.py refuses them too: --size must not be read as --sizes)."""
import argparse
import re


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        from nstyle.flags import closest_flag_hint
        unknown = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        if unknown:  # as run.py says it
            message += closest_flag_hint(unknown.group(1), self._option_string_actions)
        self.exit(2, f"error: {message}; see {self.prog} --help\n")
