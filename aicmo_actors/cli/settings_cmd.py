"""`python run.py settings`: every setting, its value (secrets masked) and where it came from."""

from __future__ import annotations

import argparse
import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from aicmo_actors.cli.errors import UserError

if TYPE_CHECKING:
    from aicmo_actors.settings import Settings

MASK = "***"
#: Plain-text fields whose name says they hold a secret are masked too.
_SECRET_NAME = re.compile(r"pass|secret|token|api_?key|credential", re.IGNORECASE)
#: The password of a URL (scheme://user:password@host).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]*@", re.IGNORECASE)

ENVIRONMENT, DOTENV, DEFAULT = "environment", ".env", "default"


@dataclass(frozen=True)
class Setting:
    """One setting as shown: variable, masked value and default, where the value came from, meaning."""

    variable: str
    value: Any
    default: Any
    source: str
    description: str
    #: Profiles (AICMO_TRANSPORTS, AICMO_INBOXES): what each key of a profile means.
    fields: dict[str, str] | None = None


def masked(value: Any, name: str = "") -> Any:
    """A JSON-ready copy of a setting's value with every secret replaced by ***."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return {key: masked(getattr(value, key), key) for key in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(key): masked(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(item, name) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        if value and _SECRET_NAME.search(name):
            return MASK
        return _URL_PASSWORD.sub(rf"\g<head>{MASK}@", value)
    return value


def _profile_fields(field: FieldInfo) -> dict[str, str] | None:
    """For a `dict[str, SomeProfile]` setting: each profile key and its description."""
    if typing.get_origin(field.annotation) is not dict:
        return None
    profile = typing.get_args(field.annotation)[1]
    if not (isinstance(profile, type) and issubclass(profile, BaseModel)):
        return None
    return {key: info.description or "" for key, info in profile.model_fields.items()}


def _dotenv_keys(env_file: Path) -> set[str]:
    from dotenv import dotenv_values

    if not env_file.is_file():
        return set()
    try:
        return {key.upper() for key in dotenv_values(env_file)}
    except (OSError, UnicodeDecodeError):
        return set()  # load_settings has already said what is wrong with it


def describe_settings(
    settings: Settings, environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> list[Setting]:
    """Every setting of `settings` with the source of its value: environment, .env or default."""
    environ = os.environ if environ is None else environ
    from aicmo_actors.settings import Settings  # pydantic-settings: only for the command that needs it

    env_file = env_file or Path(str(Settings.model_config.get("env_file") or ".env"))
    prefix = str(Settings.model_config.get("env_prefix") or "")
    in_environment = {key.upper() for key in environ}
    in_dotenv = _dotenv_keys(env_file)
    out = []
    for name, field in type(settings).model_fields.items():
        variable = f"{prefix}{name}".upper()
        source = ENVIRONMENT if variable in in_environment else DOTENV if variable in in_dotenv else DEFAULT
        out.append(
            Setting(
                variable=variable,
                value=masked(getattr(settings, name), name),
                default=masked(field.get_default(call_default_factory=True), name),
                source=source,
                description=" ".join((field.description or "").split()),
                fields=_profile_fields(field),
            )
        )
    return out


def _text(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def cmd_settings(args: argparse.Namespace) -> int:
    from aicmo_actors.cli.main import load_settings

    rows = describe_settings(load_settings())
    if args.name:
        wanted = {f"AICMO_{n.upper().removeprefix('AICMO_')}" for n in args.name}
        unknown = sorted(wanted - {row.variable for row in rows})
        if unknown:
            raise UserError(f"no setting {', '.join(unknown)}: `python run.py settings` lists them all")
        rows = [row for row in rows if row.variable in wanted]
    if args.json:
        print(
            json.dumps(
                {
                    row.variable: {
                        "value": row.value,
                        "source": row.source,
                        "default": row.default,
                        "description": row.description,
                        **({"fields": row.fields} if row.fields is not None else {}),
                    }
                    for row in rows
                },
                ensure_ascii=False,
            )
        )
        return 0
    for row in rows:
        origin = row.source
        if row.source != DEFAULT and row.fields is None:  # a profile's default is in its description
            origin += f"; default {_text(row.default)}"
        shown_value = "" if row.fields is not None else f" = {_text(row.value)}"
        print(f"{row.variable}{shown_value}   ({origin})")
        if row.description:
            print(f"    {row.description}")
        if row.fields is None:
            continue
        for profile, values in row.value.items():
            for key, meaning in row.fields.items():
                print(f"  {row.variable}.{profile}.{key} = {_text(values.get(key))}")
                if meaning:
                    print(f"      {meaning}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "settings",
        help="show every setting, its value and where it came from",
        description="Print every AICMO_* setting with its value, where the value came from (environment, "
        ".env file, or default) and what it means; the transport and inbox profiles key by key. "
        f"Secrets (passwords, the unsubscribe key, the password in a URL) are shown as {MASK}.",
    )
    p.add_argument("name", nargs="*", metavar="NAME", help="only these settings (e.g. AICMO_TRANSPORTS or transports)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object: variable -> value, source, default, description"
    )
    p.set_defaults(func=cmd_settings)
