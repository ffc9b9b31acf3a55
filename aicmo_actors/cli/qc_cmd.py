"""`python run.py qc FILE --brief CLIENT`: quality control on one draft, for debugging.

Prints the findings and the verdict as one JSON object (the checks `qc.checker` runs, see
docs/qc.md). The brief is a JSON or TOML file of brief answers, or a client in the database:
a project id (its first characters) or a company name, whose brief is the answers onboarding
collected. Exit 0 when the draft passes, 1 when a finding is an error, 2 on a user mistake.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aicmo_actors.cli.errors import UserError

#: What a brief file may hold besides the brief's answers: who the client is.
CLIENT_KEYS = ("company", "language", "country", "contact_email")
DEFAULT_TYPE = "blog_post"
_TITLE = re.compile(r"\A\s*#(?!#)\s*(.+?)\s*#*\s*(?:\n|\Z)")


@dataclass
class Subject:
    """What the draft is checked against: the client, the brief, the package (if any), earlier drafts."""

    client: dict[str, Any]
    brief: dict[str, str]
    package: Any = None
    earlier: list[Any] = field(default_factory=list)
    source: str = ""


def _read_draft(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{name}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"{name}: not UTF-8 text (a Markdown or plain-text file is expected)") from None
    except OSError as exc:
        raise UserError(f"{name}: cannot read it: {exc.strerror or exc}") from None


def split_title(text: str) -> tuple[str, str]:
    """A leading "# Heading" is the draft's title; the rest is its text."""
    match = _TITLE.match(text)
    if match is None:
        return "", text
    return match.group(1).strip(), text[match.end() :]


def _brief_file(path: Path) -> Subject:
    from contracts.onboarding import BRIEF_FIELDS

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"--brief {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8")) if path.suffix.lower() == ".toml" else json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise UserError(f"--brief {path}: not valid {kind}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"--brief {path}: expected an object of brief answers (keys such as business, audience)")
    known = {f.key for f in BRIEF_FIELDS}
    unknown = sorted(set(data) - known - set(CLIENT_KEYS))
    if unknown:
        allowed = ", ".join([*(f.key for f in BRIEF_FIELDS), *CLIENT_KEYS])
        raise UserError(f"--brief {path}: unknown key {unknown[0]!r} (the keys are: {allowed})")
    bad = sorted(k for k, v in data.items() if not isinstance(v, str))
    if bad:
        raise UserError(f"--brief {path}: {bad[0]!r} must be text")
    brief = {k: v for k, v in data.items() if k in known}
    client = {k: data[k] for k in CLIENT_KEYS if k in data}
    return Subject(client=client, brief=brief, source=str(path))


def _is_file(target: str) -> bool:
    return target.lower().endswith((".json", ".toml")) or "/" in target or Path(target).is_file()


def _from_database(target: str) -> Subject:
    from aicmo_actors.cli.records import _run_with_store

    async def work(store: Any) -> Subject:
        from aicmo_actors.orchestration.projects import ProjectError, ProjectsRepo
        from aicmo_actors.qc.repos import QcStore

        repo = ProjectsRepo(store.engine)
        wanted = " ".join(target.split()).lower()
        named = [p for p in await repo.page(limit=10_000) if " ".join(str(p["company"]).split()).lower() == wanted]
        try:
            found = await repo.get(named[0]["id"] if named else target)
        except ProjectError as exc:
            raise UserError(
                f"--brief {target}: not a brief file, nor a client's company or project id ({exc})"
            ) from None
        project = found["project"]
        onboarding = next((s for s in found["steps"] if s["step"] == "onboarding"), None)
        brief = dict(onboarding["result"] or {}) if onboarding is not None and onboarding.get("result") else {}
        if not brief:
            raise UserError(
                f"project {project['id']} ({project['company']}) has no brief yet: its onboarding is not complete"
            )
        client = dict(project["client"])
        earlier = await QcStore(store.engine).checks.earlier(str(client.get("client_ref")), item_id="")
        return Subject(
            client=client,
            brief={k: str(v) for k, v in brief.items()},
            package=project["package"],
            earlier=earlier,
            source=f"project {project['id']}",
        )

    result: Subject = _run_with_store(work)
    return result


def _package(name: str) -> Any:
    from aicmo_actors.cli.main import load_settings
    from aicmo_actors.orchestration.packages import PackageError, find_package

    try:
        return find_package(load_settings().packages_dir, name)
    except PackageError as exc:
        raise UserError(f"--package {name}: {' '.join(exc.lines()[0].split())}") from None


def _item(args: argparse.Namespace, package: Any) -> Any:
    from contracts.strategy import PlannedItem

    kind = args.type or DEFAULT_TYPE
    deliverables = list(package.deliverables) if package is not None else []
    match = next(
        (d for d in deliverables if d.type == kind and (args.channel is None or d.channel == args.channel)), None
    )
    channel = args.channel or (match.channel if match is not None else "blog")
    limits = {}
    if match is not None:
        limits = {"min_words": match.min_words, "max_words": match.max_words, "max_chars": match.max_chars}
    return PlannedItem(
        key=f"{kind}:{channel}:1", type=kind, channel=channel, piece=1, due=date.today(), topic="", **limits
    )


def cmd_qc(args: argparse.Namespace) -> int:
    from aicmo_actors.qc.checks import Earlier, check_draft
    from contracts.clients import ClientInfo
    from contracts.packages import PackageSpec

    text = _read_draft(args.file)
    subject = _brief_file(Path(args.brief)) if _is_file(args.brief) else _from_database(args.brief)
    package = None
    if args.package:
        package = _package(args.package)
    elif subject.package is not None:
        package = PackageSpec.model_validate(subject.package)
    client_data = {"company": "", "contact_email": "", **subject.client}
    if args.language:
        client_data["language"] = args.language.lower()
    client_data.setdefault("client_ref", str(uuid.UUID(int=0)))
    client = ClientInfo.model_validate({k: v for k, v in client_data.items() if k in ClientInfo.model_fields})
    title, body = (args.title, text) if args.title is not None else split_title(text)
    item = _item(args, package)
    verdict = check_draft(
        title,
        body,
        item=item,
        brief=subject.brief,
        client=client,
        reading_grade=package.reading_grade if package is not None else None,
        earlier=[Earlier(f"item {e.item_id}, version {e.version}", e.title, e.text) for e in subject.earlier],
    )
    out = {
        "file": args.file,
        "brief": subject.source,
        "type": item.type,
        "channel": item.channel,
        "language": client.language,
        "passed": verdict.passed,
        "errors": len(verdict.errors()),
        "warnings": len(verdict.findings) - len(verdict.errors()),
        "findings": [f.model_dump(mode="json") for f in verdict.findings],
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0 if verdict.passed else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    qc = sub.add_parser(
        "qc",
        help="check one draft as quality control does (findings and verdict as JSON)",
        description="Run quality control's checks on a draft (Markdown or plain text; - reads stdin) and print "
        "the findings and the verdict as JSON: spelling in the client's language, readability against the "
        "package's grade, length, words the brief forbids or asks for, the brand name, placeholders, links, "
        "e-mail addresses and phone numbers, near-duplicates of the client's earlier drafts. A leading "
        '"# Heading" is the title. Exit 0: passed; 1: a finding is an error.',
        epilog="--brief takes a JSON or TOML file of brief answers (keys: business, audience, goals, brand_voice, "
        "competitors, words_to_use, words_to_avoid, assets; and who the client is: company, language, country, "
        "contact_email), or a client in the database: a project id (its first characters) or a company name.",
    )
    qc.add_argument("file", metavar="FILE", help="the draft (Markdown or plain text); - reads standard input")
    qc.add_argument("--brief", required=True, metavar="CLIENT", help="a brief file (.json, .toml) or a client")
    qc.add_argument("--type", metavar="T", help=f"the deliverable's type (default: {DEFAULT_TYPE})")
    qc.add_argument("--channel", metavar="C", help="its channel (default: the package's for the type, else blog)")
    qc.add_argument("--language", metavar="L", help="the client's language, ISO 639-1 (default: the client's, else en)")
    qc.add_argument("--package", metavar="NAME", help="the package whose limits and reading grade apply")
    qc.add_argument("--title", metavar="TEXT", help="the title (an email's subject line); default: a leading # heading")
    qc.set_defaults(func=cmd_qc)
