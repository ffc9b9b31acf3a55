"""The simulated world: prospects who reply, bounce or stay silent, driven by the fake clock.

A composition root like `cli` (it drives the whole system), used by the simulation tests,
`python run.py demo` and `python -m bench sim`.
"""
