#!/usr/bin/env python3
"""AICMO Actors: `python run.py --help`."""

import sys

from aicmo_actors.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
