#!/usr/bin/env python
"""Neural style, as MXNet's example: python run.py --content-image photo.jpg --style-image painting.jpg"""
import sys

from nstyle.errors import missing_dependency_line

if __name__ == "__main__":
    try:
        from nstyle.cli import main
    except ModuleNotFoundError as error:  # not the venv's Python: one line, not a traceback
        print(missing_dependency_line(error, "run.py"), file=sys.stderr)
        sys.exit(1)
    sys.exit(main())
