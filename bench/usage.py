"""The benches' argument parser: a usage error is one line and exit 2, as in run.py (argparse prints the whole
usage before it), and no abbreviated flag (run.py refuses them too: --size must not be read as --sizes)."""
import argparse


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")
