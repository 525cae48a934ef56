#!/usr/bin/env python
"""Neural style, as MXNet's example: python run.py --content-image photo.jpg --style-image painting.jpg"""
import sys

from nstyle.cli import main

if __name__ == "__main__":
    sys.exit(main())
