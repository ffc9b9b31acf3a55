"""A service package: what a client buys (price, billing rhythm, what is delivered per
period, review rounds, turnaround, reporting, the KPIs promised). Written as a TOML file in
`packages/` and checked by `python run.py package check`; a signed deal carries a copy of
it (`PackageSpec`), so a package edited later does not change a signed client's terms.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 3

BillingRhythm = Literal["monthly", "one_off", "milestones"]
ReportingCadence = Literal["weekly", "fortnightly", "monthly"]
#: How approved work is handed over: an email with the files attached, a signed webhook to
#: the client's publishing system, or a folder export.
DeliveryMethod = Literal["email", "webhook", "folder"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Deliverable(_Frozen):
    """One kind of work delivered every period: `count` pieces of `type` on `channel`."""

    type: str  # e.g. "blog_post", "social_post", "newsletter", "landing_page"
    count: int = Field(ge=1)
    channel: str  # e.g. "blog", "linkedin", "email"
    min_words: int | None = Field(default=None, ge=1)
    max_words: int | None = Field(default=None, ge=1)
    max_chars: int | None = Field(default=None, ge=1)


class Milestone(_Frozen):
    """A share of the price invoiced when a named point is reached (billing = milestones)."""

    name: str
    share: Decimal = Field(gt=0, le=1)
    #: The saga step whose completion reaches it ("signed": at signing); None: invoiced by a
    #: person (`python run.py invoice milestone PROJECT NAME`).
    at: Literal["signed", "onboarding", "strategy", "production"] | None = None


class Kpi(_Frozen):
    """A figure the package promises to move, with its default target per period."""

    name: str  # e.g. "organic_sessions"
    target: float
    unit: str = ""  # e.g. "sessions", "%", "leads"
    direction: Literal["up", "down"] = "up"


class PackageSpec(_Frozen):
    contract_version: int = CONTRACT_VERSION
    name: str
    title: str
    price: Decimal = Field(ge=0)
    currency: str  # ISO 4217, upper case
    billing: BillingRhythm
    milestones: tuple[Milestone, ...] = ()
    #: The length of one delivery period, in months (1: a monthly plan).
    period_months: int = Field(default=1, ge=1, le=12)
    deliverables: tuple[Deliverable, ...]
    review_rounds: int = Field(ge=0)
    #: Business days (the client's) from a request to its delivery.
    turnaround_days: int = Field(ge=1)
    reporting: ReportingCadence
    kpis: tuple[Kpi, ...] = ()
    #: How approved work is handed over (each piece once per method).
    delivery: tuple[DeliveryMethod, ...] = ("email",)
    #: A person signs each piece off after quality control, before the client sees it.
    qc_signoff: bool = False
    #: The hardest a text may read (Flesch-Kincaid grade); None: not checked.
    reading_grade: float | None = Field(default=None, gt=0, le=30)
    #: Business days after a review request when silence counts as approval (announced in
    #: the reminder); None: never, a person is alerted instead.
    auto_approve_days: int | None = Field(default=None, ge=1)
    #: The contract's length in months from the start (renewal reminders count down to its
    #: end; a monthly retainer is invoiced every period until then).
    term_months: int = Field(default=12, ge=1, le=120)
    #: Days from an invoice's date to its due date.
    payment_days: int = Field(default=14, ge=0, le=365)
    #: The price of one review round past `review_rounds` on a piece (None: not billed).
    extra_round_price: Decimal | None = Field(default=None, ge=0)
