"""The simulated world: prospects who reply, bounce or stay silent, driven by the fake clock.

A composition root like `cli` (it drives the whole system), used by the simulation tests,
`python run.py demo` and `python -m bench sim`.
"""

#: What a run writes in its folder: names of its own, never the service's (aicmo.db, mail/),
#: so a run started in the service's folder cannot replace what the service keeps there.
DATABASE_FILE = "simulation.db"
MAIL_FOLDER = "simulation-mail"
