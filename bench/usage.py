"""The benches' argument parser: a usage error is one line and exit 2, as in run.py (argparse prints the whole
usage before it)."""
import argparse


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")
