"""Neural style (Gatys et al.) as MXNet's classic example did it, with a PyTorch twin for comparison.

    import nstyle
    result = nstyle.stylize("photo.jpg", "painting.jpg", max_long_edge=256)
    result.save("out.jpg")

nstyle.stylize(content, style, **options) -> Result paints one picture; nstyle.StyleTransfer keeps the weights
warm across calls; nstyle.Options holds the options (run.py's flags as fields). See nstyle.api.
"""
import importlib

# Loaded on first use (PEP 562): `from nstyle.errors import ...` in run.py must work before numpy, OpenCV or a
# framework is importable, to say in one line that the venv is not in use.
EXPORTS = {"stylize": "nstyle.api", "StyleTransfer": "nstyle.api", "Result": "nstyle.api",
           "Options": "nstyle.options", "OptionError": "nstyle.options", "Progress": "nstyle.engine",
           "NStyleError": "nstyle.errors", "UsageError": "nstyle.errors", "RuntimeFailure": "nstyle.errors"}
__all__ = sorted(EXPORTS)


def __getattr__(name):
    if name not in EXPORTS:
        raise AttributeError(f"module 'nstyle' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)


def __dir__():
    return __all__
