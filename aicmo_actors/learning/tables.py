"""The tables of learning (prefix ``learning_``). Declarations only: no business logic.

Outcome records, each once (its natural key is the primary key), tied together by the
outbound email's id (a send and the replies to it), the lead (a deal) and the client (a payment):

- ``learning_sends``: every email CAM sent (`EmailSent`): campaign, step, variant, lead, when;
- ``learning_replies``: every classified reply tied to an email (`ReplyClassified` with an
  outbound id): its category and whether it is positive (the reward);
- ``learning_deals``: signed deals (`ClientSigned`, once per deal): lead, campaign, client;
- ``learning_payments``: payments received (`PaymentReceived`), as exact decimal text;
- ``learning_campaigns``: the campaigns that ask for a bandit (`BanditCampaign`), latest wins;
- ``learning_weights``: each allocation decided for a campaign's step, with the numbers behind
  it; written first, told to cam.scheduler after (`told_at`), told again after a crash.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from aicmo_actors.storage.metadata import Base, Id, UtcDateTime


class LearningSend(Base):
    """One email CAM sent, with the variant it carried."""

    __tablename__ = "learning_sends"

    outbound_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    campaign: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[int] = mapped_column(Id, index=True)
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    correlation_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index(None, "campaign", "step", "variant"),)


class LearningReply(Base):
    """One classified reply tied to one of our emails."""

    __tablename__ = "learning_replies"

    inbound_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    outbound_id: Mapped[int] = mapped_column(Id, index=True)
    lead_id: Mapped[int | None] = mapped_column(Id)
    campaign: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    #: interested, meeting request, question or referral: the bandit's reward.
    positive: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    correlation_id: Mapped[str | None] = mapped_column(String(36))


class LearningDeal(Base):
    """A lead that signed."""

    __tablename__ = "learning_deals"

    deal_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    lead_id: Mapped[int] = mapped_column(Id, index=True)
    campaign: Mapped[str] = mapped_column(String(200))
    client_ref: Mapped[str] = mapped_column(String(36), index=True)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    correlation_id: Mapped[str | None] = mapped_column(String(36))


class LearningPayment(Base):
    """A payment a client made (its amount as exact decimal text)."""

    __tablename__ = "learning_payments"

    #: "<invoice id>:<amount>:<balance after>:<received on>": the same payment told twice is one.
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    client_ref: Mapped[str] = mapped_column(String(36), index=True)
    invoice_id: Mapped[str] = mapped_column(String(36))
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(8))
    received_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    correlation_id: Mapped[str | None] = mapped_column(String(36))


class LearningCampaign(Base):
    """A campaign that asks for a bandit, as CAM last announced it."""

    __tablename__ = "learning_campaigns"

    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_days: Mapped[float] = mapped_column(Float)
    burn_in: Mapped[int] = mapped_column(Integer)
    floor: Mapped[float] = mapped_column(Float)
    #: [{"step": 1, "weights": {"A": 1.0, "B": 1.0}}, ...]: the steps with variants.
    steps: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LearningWeights(Base):
    """One allocation decided for a campaign's step."""

    __tablename__ = "learning_weights"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    campaign: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    #: Variant name -> share of new assignments (sums to 1, none under the floor).
    weights: Mapped[Any] = mapped_column(JSON)
    #: Per variant: sends, successes, failures, p_best.
    arms: Mapped[Any] = mapped_column(JSON)
    #: Still in burn-in: the campaign's own weights (with the floor), not reweighted.
    burn_in: Mapped[bool] = mapped_column(Boolean)
    floor: Mapped[float] = mapped_column(Float)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    #: When it was told to cam.scheduler (NULL: not yet; told at the next start).
    told_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index(None, "campaign", "step", "as_of"),)


learning_sends = cast(Table, LearningSend.__table__)
learning_replies = cast(Table, LearningReply.__table__)
learning_deals = cast(Table, LearningDeal.__table__)
learning_payments = cast(Table, LearningPayment.__table__)
learning_campaigns = cast(Table, LearningCampaign.__table__)
learning_weights = cast(Table, LearningWeights.__table__)
