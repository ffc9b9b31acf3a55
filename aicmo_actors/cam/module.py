"""`cam` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actors. `tests/unit/test_module_specs.py` checks it against the tree
`cam_supervisor` really builds, so the two cannot drift.
"""

from __future__ import annotations

from contracts.cam import CONTRACT_VERSION
from contracts.orchestration import ModuleSpec

ACTORS = (
    "cam.alerts",
    "cam.followup",
    "cam.deals",
    "cam.decision",
    "cam.classifier",
    "cam.sender",
    "cam.scheduler",
    "cam.inbox",
    "cam.web",
)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="cam",
        title="Client acquisition: prospecting by email, replies, follow-ups, alerts",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=(
            "Tick",
            "SendEmail",
            "FlushSends",
            "PollInbox",
            "ReplyReceived",
            "ReplyClassified",
            "EmailSent",
            "EmailFailed",
            "ReplyActedOn",
            "AlertRequested",
            "RetryAlert",
            "ProjectOpened",
            "RenewalApplied",
            "SetVariantWeights",
        ),
        emits=(
            "EmailSent",
            "EmailFailed",
            "ReplyClassified",
            "ReplyActedOn",
            "LeadStateChanged",
            "CampaignPaused",
            "MailboxPaused",
            "ClientSigned",
            "ContractRenewed",
            "UnmatchedReply",
            "AlertDelivered",
            "CycleReport",
            "BanditCampaign",
        ),
        can_disable=True,
        # The unsubscribe endpoint keeps answering: a recipient's opt-out never waits.
        switchable=tuple(a for a in ACTORS if a != "cam.web"),
        sending=("cam.scheduler", "cam.sender"),
        stops=(
            "no email is scheduled or sent, no reply is read, classified or acted on, no follow-up "
            "and no alert; queued emails and unread replies wait (in the database and the mailboxes) "
            "and are processed when it is switched on; unsubscribe links keep working"
        ),
    )
