"""`client_review` as the module registry sees it: its declaration, made here once.

Pure data (it imports only contracts): `python run.py modules` and the control API read it
without loading the actor.
"""

from __future__ import annotations

from contracts.client_review import CONTRACT_VERSION
from contracts.orchestration import ModuleSpec

#: The actor's name (`client_review.reviews.REVIEWS`), spelled here so this file stays pure data.
ACTORS = ("client_review.reviews",)


def describe() -> ModuleSpec:
    return ModuleSpec(
        name="client_review",
        title="Client review: the client approves each piece, or asks for changes, by link or by reply",
        actors=ACTORS,
        contract_version=CONTRACT_VERSION,
        consumes=("RequestReview", "WithdrawReviews", "UnmatchedReply", "Tick"),
        emits=("ReviewRequested", "ItemReviewed", "ReviewsWithdrawn"),
        can_disable=True,
        switchable=ACTORS,
        sending=ACTORS,
        stops=(
            "no review request, reminder or notice is sent, no emailed answer is read and no verdict is "
            "announced; commands wait in the mailbox and page answers in the database, and are processed "
            "when it is switched on; clients' review pages keep working and keep recording their answers"
        ),
    )
