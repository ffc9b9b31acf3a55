"""The running service's status file: what `python run.py status` reads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from contracts.runtime import SystemSnapshot


def status_path(state_dir: Path) -> Path:
    return state_dir / "status.json"


def write_status(state_dir: Path, snapshot: SystemSnapshot, pid: int) -> None:
    """Replace the status file atomically (a reader never sees half a file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = status_path(state_dir)
    tmp = target.with_suffix(f".{pid}.tmp")
    payload = {"pid": pid, "snapshot": json.loads(snapshot.model_dump_json())}
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, target)


def read_status(state_dir: Path) -> tuple[int, SystemSnapshot] | None:
    target = status_path(state_dir)
    try:
        payload: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return int(payload["pid"]), SystemSnapshot.model_validate(payload["snapshot"])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
