"""Campaign files: a TOML file per campaign, validated into frozen pydantic models.

Errors are one line naming the file, the key path and what was expected, e.g.
``campaign.toml: steps[1].delay_days: must be >= 0``. Unknown keys are errors, so a typo
is caught before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
# Keys that look like credentials: these live in AICMO_TRANSPORTS, never in a campaign file.
_SECRET_KEY = re.compile(r"pass|secret|token|api_?key|credential", re.IGNORECASE)


def _weekday(day: object) -> str:
    """'mon', 'Monday', 'tues' -> 'mon'...; anything else is an error (not just its first 3 letters)."""
    word = str(day).strip().lower()
    for key, full in zip(WEEKDAYS, _DAY_NAMES, strict=True):
        if len(word) >= 3 and full.startswith(word):
            return key
    raise ValueError(f"unknown weekday {day!r} (use mon, tue, wed, thu, fri, sat, sun)")


#: Top-level domains reserved for tests (RFC 2606, RFC 6761) that email-validator refuses.
#: ".test" it accepts with `test_environment=True`; ".invalid" and ".localhost" it refuses
#: always, so they are checked as ".test" (same syntax rules) and given back their own name.
#: ".example" and example.com/.net/.org it accepts anyway, as RFC 6761 asks.
_TEST_TLDS = ("invalid", "localhost")


def check_address(address: str, *, allow_test_domains: bool = False) -> str:
    """The normalised form of an address (syntax only, no network); `EmailNotValidError` otherwise.

    The part before the @ must be ASCII: sending does not do SMTPUTF8 (an IDN domain is fine).
    `allow_test_domains` also accepts the special-use test domains (.test, .invalid,
    .localhost), for test environments; no global state of email-validator is touched.
    """
    if not allow_test_domains:
        return validate_email(address, check_deliverability=False, allow_smtputf8=False).normalized
    local, at, domain = address.rpartition("@")
    tld = domain.rpartition(".")[2]
    swapped = tld.lower() if tld.lower() in _TEST_TLDS else None
    if at and swapped is not None:
        address = f"{local}@{domain[: len(domain) - len(tld)]}test"
    valid = validate_email(address, check_deliverability=False, allow_smtputf8=False, test_environment=True)
    if swapped is None:
        return valid.normalized
    return f"{valid.local_part}@{valid.domain.removesuffix('test')}{swapped}"


def is_timezone(name: str) -> bool:
    """True for a name zoneinfo knows (an IANA name like Europe/Berlin)."""
    try:
        ZoneInfo(name)
    # A directory such as "Europe" raises IsADirectoryError, an over-long name OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class CampaignFileError(ValueError):
    """A campaign file that cannot be used; the message is one line."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendWindow(_Model):
    """When emails may go out, in each lead's own timezone."""

    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(17, 0)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            out = [_weekday(day) for day in value]
            if not out:
                raise ValueError("needs at least one day")
            return tuple(dict.fromkeys(out))
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text in ("24:00", "24:00:00"):
                return time(23, 59, 59, 999999)
            clock = _CLOCK.match(text)
            try:
                if clock:  # "9:00" as well as "09:00"
                    return time(int(clock[1]), int(clock[2]), int(clock[3] or 0))
                parsed = time.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a time like 09:00") from None
            if parsed.tzinfo is not None:
                raise ValueError(f"{value!r}: no UTC offset here, the window is in each lead's own timezone")
            return parsed
        return value

    @model_validator(mode="after")
    def _order(self) -> SendWindow:
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")
        return self

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.days)


# Upper bounds keep every number finite and inside what `timedelta` can hold.
class Limits(_Model):
    daily_cap: int = Field(default=40, ge=0, description="emails per sending mailbox per day")
    min_gap_seconds: float = Field(
        default=180, ge=0, le=86400, allow_inf_nan=False, description="between two sends from one mailbox"
    )
    jitter_seconds: float = Field(
        default=120, ge=0, le=86400, allow_inf_nan=False, description="a random 0..jitter on top of the gap"
    )


class MailboxSpec(_Model):
    address: str
    display_name: str | None = None
    transport: str = "default"

    @field_validator("address")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        allow_test_domains = bool((info.context or {}).get("allow_test_domains"))
        try:
            return check_address(value, allow_test_domains=allow_test_domains)
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not a valid address: {exc}") from None

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        # Everything str.splitlines() breaks on, and NUL: it goes into the From header.
        if value is not None and any(c in value for c in "\r\n\0\v\f\x1c\x1d\x1e\x85\u2028\u2029"):
            raise ValueError("must not contain line breaks")
        return value


class VariantSpec(_Model):
    name: str
    weight: float = Field(default=1.0, gt=0, le=1_000_000, allow_inf_nan=False)
    subject: str | None = None
    body: str | None = None
    html: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a variant needs a name")
        return value


class StepSpec(_Model):
    delay_days: float = Field(default=0, ge=0, le=3650, allow_inf_nan=False)
    subject: str = ""
    body: str
    html: str | None = None
    weight: float = Field(
        default=1.0, gt=0, le=1_000_000, allow_inf_nan=False, description="weight of the step's own text, variant A"
    )
    variants: tuple[VariantSpec, ...] = ()

    @model_validator(mode="after")
    def _names(self) -> StepSpec:
        names = ["A", *(v.name for v in self.variants)]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique and not 'A' (the step's own text): {names}")
        return self

    def variant(self, name: str) -> tuple[str, str, str | None]:
        """(subject, body, html) of a variant; missing parts fall back to the step's own."""
        if name == "A":
            return self.subject, self.body, self.html
        for v in self.variants:
            if v.name == name:
                return (
                    v.subject if v.subject is not None else self.subject,
                    v.body if v.body is not None else self.body,
                    v.html if v.html is not None else self.html,
                )
        raise KeyError(name)


class BanditSpec(_Model):
    """`[bandit]`: the step's variants are chosen by a bandit (learning.bandit) instead of fixed weights.

    A send is a success when a positive reply (interested, meeting request, question, referral)
    arrives within `window_days`; no arm is reweighted before every arm of the step has `burn_in`
    decided sends; no arm gets less than `floor` of the new assignments. A lead keeps the variant
    it first got for every later step that has a variant of that name.
    """

    window_days: float = Field(default=14, gt=0, le=365, allow_inf_nan=False)
    burn_in: int = Field(default=100, ge=1, le=1_000_000)
    floor: float = Field(default=0.01, ge=0, lt=0.5, allow_inf_nan=False)


class CampaignSpec(_Model):
    name: str
    timezone: str = "UTC"
    postal_address: str
    stop_company_on_reply: bool = False
    window: SendWindow = SendWindow()
    limits: Limits = Limits()
    mailboxes: tuple[MailboxSpec, ...] = Field(min_length=1)
    steps: tuple[StepSpec, ...] = Field(min_length=1)
    #: None: variants by the file's fixed weights (as before `[bandit]` existed).
    bandit: BanditSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(
                f"{value!r}: use lower-case letters, digits, '.', '_' and '-' (it is used on the command line)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        if not is_timezone(value):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)")
        return value

    @field_validator("mailboxes")
    @classmethod
    def _distinct_mailboxes(cls, value: tuple[MailboxSpec, ...]) -> tuple[MailboxSpec, ...]:
        # Caps and gaps are kept per address: a mailbox listed twice would send twice its cap.
        seen: set[str] = set()
        for mailbox in value:
            key = mailbox.address.lower()
            if key in seen:
                raise ValueError(f"{mailbox.address!r} is listed twice")
            seen.add(key)
        return value

    @field_validator("postal_address")
    @classmethod
    def _postal(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the sender's postal address is required in every email (CAN-SPAM)")
        return value.strip()

    @model_validator(mode="after")
    def _first_step(self) -> CampaignSpec:
        if self.steps and not self.steps[0].subject.strip():
            raise ValueError("steps[0].subject: the first step needs a subject")
        return self

    @model_validator(mode="after")
    def _bandit(self) -> CampaignSpec:
        if self.bandit is None:
            return self
        arms = [len(step.variants) + 1 for step in self.steps if step.variants]
        if not arms:
            raise ValueError("bandit: no step has variants to choose between (add [[steps.variants]])")
        if self.bandit.floor * max(arms) > 1:
            raise ValueError(
                f"bandit.floor: {self.bandit.floor:g} for each of {max(arms)} variants is more than all the traffic"
            )
        return self

    def to_json(self) -> str:
        # Without a bandit the stored JSON (and its hash) is what it was before `[bandit]` existed.
        return self.model_dump_json(exclude={"bandit"} if self.bandit is None else None)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        """A stored campaign: its addresses were checked when it was created, under the settings of then."""
        return cls.model_validate_json(text, context={"allow_test_domains": True})

    def spec_hash(self) -> str:
        canonical = json.dumps(json.loads(self.to_json()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_campaign(text: str, source: str = "<campaign>", *, allow_test_domains: bool = False) -> CampaignSpec:
    """Parse and validate a campaign's TOML text; `CampaignFileError` (one line) otherwise.

    `allow_test_domains` accepts mailboxes on the special-use test domains (see `check_address`).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignFileError(_one_line(f"{source}: not valid TOML: {exc}")) from None
    try:
        return CampaignSpec.model_validate(data, context={"allow_test_domains": allow_test_domains})
    except ValidationError as exc:
        errors = exc.errors()
        # A bad item also fails its container ("should have at least 1 item"): not a problem of its own.
        locs = [tuple(e["loc"]) for e in errors]
        errors = [
            e for e, loc in zip(errors, locs, strict=True) if not any(o != loc and o[: len(loc)] == loc for o in locs)
        ]
        # An unknown key first: with a typo ("boddy") the real key is also "required", and the
        # typo is the one to show.
        errors.sort(key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        loc = tuple(err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
            if loc and _SECRET_KEY.search(str(loc[-1])):
                message = (
                    "unknown key: passwords and other secrets do not belong in a campaign file; "
                    "put them in AICMO_TRANSPORTS and name the transport here"
                )
        elif err["type"] == "missing":
            message = "is required"
        others = len(errors) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        # A whole-campaign check names its own key path in the message.
        where = f"{_where(loc)}: " if loc else ""
        raise CampaignFileError(_one_line(f"{source}: {where}{message}{more}")) from None


def load_campaign(path: Path | str, *, allow_test_domains: bool = False) -> CampaignSpec:
    """Read and validate a campaign file; `CampaignFileError` (one line) otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CampaignFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignFileError(f"{path}: cannot read it: {exc}") from None
    return parse_campaign(text, path.name, allow_test_domains=allow_test_domains)
