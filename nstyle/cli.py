"""run.py: the article's flags mapped to nstyle.Options, the run's lines printed, errors as one line and an exit code.

Everything else (the checks, the automatic choices, the painting, saving and resuming) is the library's
(nstyle.api); this module only talks to the terminal.
"""
import logging
import sys

from nstyle import flags
from nstyle.api import StyleTransfer
from nstyle.errors import NStyleError, RuntimeFailure
from nstyle.progress import ProgressBar

log = logging.getLogger("nstyle")


def run(namespace, options):
    """Paint with the parsed flags; the exit code (failures are raised as NStyleError)."""
    bar = ProgressBar(not namespace.quiet)
    try:
        # warm=False: one run; the weights are freed once the last network holds its own copy (peak memory).
        result = StyleTransfer(warm=False).stylize(namespace.content_image, namespace.style_image, options,
                                                   callback=bar, signals=True)
    finally:
        bar.close()
    if result.stop_reason == "interrupted":
        print(f"interrupted after epoch {result.checkpoint_data['epoch']} (scale {result.checkpoint_data['scale'] + 1}"
              f" of {len(result.plan.settings.scales)}): saved {options.output} and the checkpoint "
              f"{result.checkpoint_file}; run the same command with --resume to continue", file=sys.stderr)
        return 128 + result.signal if result.signal else 130
    if result.problem:
        raise RuntimeFailure(result.problem)
    log.info(result.summary(options.output))
    return 0


def main(argv=None, prog="run.py"):
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        namespace = flags.build_parser(prog).parse_args(argv)
        return run(namespace, flags.options_from(namespace))
    except NStyleError as error:
        print(f"error: {flags.flag_message(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # during the set-up, or a second Ctrl-C during the epochs
        print("interrupted: stopped at once; nothing more was saved", file=sys.stderr)
        return 130


def console_main():
    """The `nstyle` console script (pyproject.toml): run.py's command under its own name in --help and errors."""
    return main(prog="nstyle")
