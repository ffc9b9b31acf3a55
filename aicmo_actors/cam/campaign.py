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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


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
            out = []
            for day in value:
                key = str(day).strip().lower()[:3]
                if key not in WEEKDAYS:
                    raise ValueError(f"unknown weekday {day!r} (use mon, tue, wed, thu, fri, sat, sun)")
                out.append(key)
            if not out:
                raise ValueError("needs at least one day")
            return tuple(dict.fromkeys(out))
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip() in ("24:00", "24:00:00"):
                return time(23, 59, 59, 999999)
            try:
                return time.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a time like 09:00") from None
        return value

    @model_validator(mode="after")
    def _order(self) -> SendWindow:
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")
        return self

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.days)


class Limits(_Model):
    daily_cap: int = Field(default=40, ge=0, description="emails per sending mailbox per day")
    min_gap_seconds: float = Field(default=180, ge=0, description="between two sends from one mailbox")
    jitter_seconds: float = Field(default=120, ge=0, description="a random 0..jitter on top of the gap")


class MailboxSpec(_Model):
    address: str
    display_name: str | None = None
    transport: str = "default"

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not a valid address: {exc}") from None

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\r\n\0"):
            raise ValueError("must not contain line breaks")
        return value


class VariantSpec(_Model):
    name: str
    weight: float = Field(default=1.0, gt=0)
    subject: str | None = None
    body: str | None = None
    html: str | None = None


class StepSpec(_Model):
    delay_days: float = Field(default=0, ge=0)
    subject: str = ""
    body: str
    html: str | None = None
    weight: float = Field(default=1.0, gt=0, description="weight of the step's own text, variant A")
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


class CampaignSpec(_Model):
    name: str
    timezone: str = "UTC"
    postal_address: str
    stop_company_on_reply: bool = False
    window: SendWindow = SendWindow()
    limits: Limits = Limits()
    mailboxes: tuple[MailboxSpec, ...] = Field(min_length=1)
    steps: tuple[StepSpec, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r}: use lower-case letters, digits, '.', '_' and '-' (it is used on the command line)")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)") from None
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

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        return cls.model_validate_json(text)

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


def parse_campaign(text: str, source: str = "<campaign>") -> CampaignSpec:
    """Parse and validate a campaign's TOML text; `CampaignFileError` (one line) otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignFileError(f"{source}: not valid TOML: {exc}") from None
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        elif err["type"] == "missing":
            message = "is required"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise CampaignFileError(f"{source}: {_where(err['loc'])}: {message}{more}") from None


def load_campaign(path: Path | str) -> CampaignSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CampaignFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignFileError(f"{path}: cannot read it: {exc}") from None
    return parse_campaign(text, path.name)
