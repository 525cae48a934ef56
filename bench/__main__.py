"""python -m bench: the memory-and-time benchmark (bench/suite.py), with a one-line error outside the venv."""
import sys

from nstyle.errors import missing_dependency_line

if __name__ == "__main__":
    try:
        from bench.suite import main
    except ModuleNotFoundError as error:
        print(missing_dependency_line(error, "-m bench"), file=sys.stderr)
        sys.exit(1)
    sys.exit(main())
