"""The command line: `python run.py --help`. The composition root, allowed to import every module."""
