"""`onboarding` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.onboarding import CONTRACT_VERSION
from contracts.orchestration import ModuleSpec

#: The actor's name (`onboarding.intake.INTAKE`), spelled here so this file stays pure data.
ACTORS = ("onboarding.intake",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="onboarding",
        title="Onboarding: welcome a signed client, collect the intake questionnaire, remind",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=("StartOnboarding", "CancelOnboarding", "UnmatchedReply", "Tick"),
        emits=(
            "OnboardingStarted",
            "OnboardingCompleted",
            "OnboardingOverdue",
            "OnboardingCancelled",
            "OnboardingFailed",
            "IntakeReplyReceived",
        ),
        can_disable=True,
        switchable=ACTORS,
        sending=ACTORS,
        stops=(
            "no welcome or reminder is sent and no intake is started, cancelled or announced; commands "
            "and completions wait (in the mailbox and the database) and are processed when it is switched "
            "on; clients' intake links keep working (the form is served by the service's HTTP server)"
        ),
    )
