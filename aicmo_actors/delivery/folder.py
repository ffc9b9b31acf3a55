"""The folder export: a piece's files written under ``<delivery_dir>/<client folder>/``, plus
its entry in that folder's ``manifest.json``.

Every file is written whole to a temporary file in the same folder, flushed to disk, then
renamed over its name (`os.replace`, atomic on POSIX and Windows): a reader never sees half a
file, and an export retried after a crash writes the same names with the same bytes (the
documents are deterministic), so it is done once however often it is tried. The manifest is
keyed by the delivery's idempotency key: a retry rewrites its entry, never adds a second.
Names come from `names` (safe against traversal and odd characters) and are checked again to
stay inside the client's folder before anything is written.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from aicmo_actors.delivery.names import MANIFEST, client_folder, file_names, is_plain_name


class ExportError(OSError):
    """A name that would leave the export folder (a bug: `names` never makes one)."""


def write_atomically(path: Path, data: bytes) -> None:
    """`data` at `path`, whole or not at all (temporary file, fsync, `os.replace`)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _inside(folder: Path, name: str) -> Path:
    if not is_plain_name(name):
        raise ExportError(f"unsafe file name {name!r}")
    path = folder / name
    if path.resolve().parent != folder.resolve():
        raise ExportError(f"{name!r} would leave {folder}")
    return path


def export(
    root: Path,
    *,
    company: str,
    client_ref: str,
    key: str,
    project_id: str,
    item_id: str,
    version: int,
    title: str,
    type_: str,
    channel: str,
    files: dict[str, bytes],
    now: datetime,
) -> str:
    """Write the piece's files and its manifest entry; the receipt: the folder and base name."""
    folder_name = client_folder(company, client_ref)
    root.mkdir(parents=True, exist_ok=True)
    folder = _inside(root, folder_name)
    folder.mkdir(exist_ok=True)
    names = file_names(type_, title, item_id, version)
    for extension, name in names.items():
        write_atomically(_inside(folder, name), files[extension])
    manifest_path = _inside(folder, MANIFEST)
    manifest: dict[str, Any] = {"deliveries": {}}
    if manifest_path.exists():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("deliveries"), dict):
                manifest = loaded
        except (ValueError, UnicodeDecodeError):
            pass  # a damaged manifest is rebuilt from what is delivered from now on
    manifest["deliveries"][key] = {
        "project": project_id,
        "item": item_id,
        "version": version,
        "title": title,
        "type": type_,
        "channel": channel,
        "files": [names[extension] for extension in names],
        "delivered_at": now.isoformat(),
    }
    data = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
    write_atomically(manifest_path, data)
    return f"{folder_name}/{names['md'].removesuffix('.md')}.{{md,html,pdf,docx}}"
