"""run.py's flags: an argparse parser built from nstyle.Options (each field one flag, its default the field's) and
the way back from parsed flags to Options. run.py (nstyle.cli) and the batch, whose jobs take run.py's flags,
read flags with it."""
import argparse
import dataclasses
import difflib
import re
import sys

from nstyle.errors import UsageError
from nstyle.options import ARTICLE, CREATIVE, PAINTING, RUN, SPEED, OptionError, Options, flag_name

SECTIONS = (ARTICLE, PAINTING, CREATIVE, SPEED, RUN)
EXAMPLES = """examples:
  {command} --content-image input/IMG_4343.jpg --style-image input/starry_night.jpg --output output/out.jpg
  {command} --content-image photo.jpg --style-image a.jpg b.jpg --style-blend-weights 3 1 --preserve-colors \\
      --max-long-edge 1024 --gpu -1 --output output/blend.png"""


def closest_flag_hint(name, known):
    """" (did you mean --x?)" with the closest of the known flags to a misspelt one, or "" when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one UsageError line (exit 2) instead of the usage and the message, and
    takes no abbreviated flag (--style-imag is refused, not read as --style-image)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        # An unknown flag is named before argparse's "the following arguments are required", which a misspelt
        # --style-imag would otherwise get. (parse_known_args stays argparse's: the batch passes run.py's flags on.)
        args = sys.argv[1:] if args is None else list(args)
        for token in args:
            name = token.split("=", 1)[0]
            if name.startswith("--") and len(name) > 2 and name not in self._option_string_actions:
                self.error(f"unrecognized argument {name}{closest_flag_hint(name, self._option_string_actions)}")
        return super().parse_args(args, namespace)

    def error(self, message):
        missing_value = re.match(r"argument (\S+): expected one argument$", message)
        if missing_value:  # argparse takes "-1e-3" for a flag: only "-1" and "-0.5" read as negative numbers
            message += f" (for a value that starts with '-', write {missing_value.group(1)}=VALUE)"
        raise UsageError(f"{message}; see {self.prog} --help")


def add_option_flags(parser):
    """One flag per Options field, in --help's sections; the images and --quiet, which are not options."""
    groups = {section: parser.add_argument_group(section) for section in SECTIONS}
    groups[ARTICLE].add_argument("--content-image", required=True, metavar="PHOTO", help="the photo to paint")
    groups[ARTICLE].add_argument("--style-image", required=True, nargs="+", metavar="PAINTING",
                                 help="the painting whose style to use; "
                                 "several are blended (each style layer's target is the blend of their Gram "
                                 "matrices)")
    for item in dataclasses.fields(Options):
        meta = dict(item.metadata)
        section, help_text = meta.pop("section"), meta.pop("help")
        default = meta.pop("flag_default", item.default)
        if meta.pop("list", None):  # a comma list: parsed in options_from, so that a bad one names its flag
            meta["type"] = str
        groups[section].add_argument(flag_name(item.name), dest=item.name, default=default, help=help_text, **meta)
    groups[RUN].add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def build_parser(prog="run.py"):
    """run.py's parser; prog names the command in usage, errors and examples (the `nstyle` console script's own)."""
    command = "python run.py" if prog == "run.py" else prog
    # A short usage line: argparse's own lists all 33 flags in 20 lines before the sections that explain them.
    return add_option_flags(Parser(prog=prog, usage="%(prog)s --content-image PHOTO --style-image PAINTING "
                                   "[PAINTING ...] [flags below]",
                                   description="Paint the content image in the style of the style "
                                   "image (Gatys et al.), as MXNet's neural-style example does.",
                                   epilog=EXAMPLES.format(command=command),
                                   formatter_class=argparse.RawDescriptionHelpFormatter))


def comma_numbers(name, text):
    """A tuple of whole numbers from "128,256,512", or OptionError naming the option."""
    try:
        values = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise OptionError(name, f"{{{name}}} {text!r}: give a comma list of whole numbers such as 128,256,512") \
            from None
    if not values or min(values) < 1:
        raise OptionError(name, f"{{{name}}} {text!r}: give a comma list of whole numbers ≥ 1")
    return values


def options_from(namespace):
    """Options from parsed flags (the images and --quiet stay on the namespace)."""
    values = {}
    for item in dataclasses.fields(Options):
        value = getattr(namespace, item.name)
        if item.metadata.get("list") and isinstance(value, str):
            value = comma_numbers(item.name, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[item.name] = value
    return Options(**values)


def flag_message(error):
    """An error's line for the command line: an option's name written as its flag."""
    return error.render(flag_name) if isinstance(error, OptionError) else str(error)
