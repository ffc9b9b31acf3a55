"""`learning` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.learning import CONTRACT_VERSION
from contracts.orchestration import ModuleSpec

#: The actor's name (`learning.bandit.BANDIT`), spelled here so this file stays pure data.
ACTORS = ("learning.bandit",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="learning",
        title="Learning: outcomes of each sent variant, and bandit weights for A/B variants",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=("Tick", "EmailSent", "ReplyClassified", "ClientSigned", "PaymentReceived", "BanditCampaign"),
        emits=("SetVariantWeights", "VariantWeightsComputed"),
        can_disable=True,
        switchable=ACTORS,
        sending=(),
        stops=(
            "no outcome is recorded and no variant is reweighted; bandit campaigns keep sending with the "
            "last weights CAM recorded (or their file's weights)"
        ),
    )
