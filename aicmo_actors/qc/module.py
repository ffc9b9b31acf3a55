"""`qc` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.orchestration import ModuleSpec
from contracts.qc import CONTRACT_VERSION

#: The actor's name (`qc.checker.CHECKER`), spelled here so this file stays pure data.
ACTORS = ("qc.checker",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="qc",
        title="Quality control: each draft checked against the brief and the package before the client sees it",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=("CheckDraft",),
        emits=("DraftChecked",),
        can_disable=True,
        switchable=ACTORS,
        sending=(),
        stops=(
            "no draft is checked: drafts wait in the checker's mailbox and are checked when it is switched on "
            "(verdicts already given are kept)"
        ),
    )
