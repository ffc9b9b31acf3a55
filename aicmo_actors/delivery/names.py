"""Folder and file names of the folder export. Pure.

A name is made from words a client or a generator chose (a company, a title), so it is made
safe here, once: ASCII letters, digits and single hyphens only (accents folded, everything
else a hyphen), never empty, never a dot first, at most `MAX_SLUG` characters. No name can
climb out of the export folder (no "/", no "\\", no ".."), hide itself (".x") or collide with
a device name on another system (an item's id is part of every file name).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

MAX_SLUG = 60
#: The file kinds written for each delivered piece, in order.
EXTENSIONS = ("md", "html", "pdf", "docx")
MANIFEST = "manifest.json"
_NOT_SAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str, *, fallback: str = "untitled", limit: int = MAX_SLUG) -> str:
    """`text` as a safe name part (see the module): "Über uns / 2026" -> "uber-uns-2026"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    cleaned = _NOT_SAFE.sub("-", folded).strip("-")
    cleaned = cleaned[:limit].rstrip("-")
    return cleaned or fallback


def client_folder(company: str, client_ref: str) -> str:
    """``<company slug>-<client_ref[:8]>``: one folder per client, readable and unique."""
    ref = slug(client_ref.replace("-", ""), fallback="client", limit=8)
    return f"{slug(company, fallback='client', limit=40)}-{ref}"


def base_name(type_: str, title: str, item_id: str, version: int) -> str:
    """``<type>-<title>-<item[:8]>-v<version>``: the file name of one piece, without extension."""
    item = slug(item_id.replace("-", ""), fallback="item", limit=8)
    return f"{slug(type_, fallback='piece', limit=30)}-{slug(title)}-{item}-v{int(version)}"


def file_names(type_: str, title: str, item_id: str, version: int) -> dict[str, str]:
    """The file of each kind (`EXTENSIONS`) for one piece."""
    base = base_name(type_, title, item_id, version)
    return {ext: f"{base}.{ext}" for ext in EXTENSIONS}


def is_plain_name(name: str) -> bool:
    """A single path part that stays where it is put (checked again before each write)."""
    part = PurePosixPath(name)
    return (
        len(part.parts) == 1
        and name not in ("", ".", "..")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )
