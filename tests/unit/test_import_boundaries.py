"""House rule 1: a module imports only contracts, runtime, gateways and storage, never another module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "aicmo_actors"
MODULES = {
    "cam",
    "onboarding",
    "strategy",
    "production",
    "qc",
    "client_review",
    "delivery",
    "reporting",
    "billing",
    "retention",
    "orchestration",
    "identity",
    "observability",
    "learning",
}
SHARED = {"runtime", "gateways", "storage"}


def _imported_names(tree: ast.AST, package_parts: list[str]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing file's package
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def find_violations(root: Path) -> list[str]:
    """One line per forbidden import: `file:line: imports X (module M may not import N)`."""
    problems: list[str] = []
    package_dir = root / PACKAGE
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        owner = rel.parts[0] if len(rel.parts) > 1 else None
        if owner not in MODULES and owner not in SHARED:
            continue  # cli, settings: the composition root may import everything
        package_parts = [PACKAGE, *rel.parts[:-1]]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        seen: set[tuple[int, str]] = set()
        for lineno, name in _imported_names(tree, package_parts):
            parts = name.split(".")
            if parts[0] != PACKAGE or len(parts) < 2:
                continue
            target = parts[1]
            allowed = SHARED | {owner} if owner in MODULES else SHARED
            if target in allowed or (lineno, target) in seen:
                continue
            seen.add((lineno, target))
            problems.append(
                f"{path.relative_to(root)}:{lineno}: imports {name} "
                f"({owner} may import only contracts, {', '.join(sorted(SHARED))}"
                f"{' and itself' if owner in MODULES else ''}, not {target})"
            )
    return problems


def test_no_module_imports_another() -> None:
    violations = find_violations(ROOT)
    assert not violations, "import boundary violations:\n" + "\n".join(violations)


def test_a_violation_names_file_line_and_import(tmp_path: Path) -> None:
    cam = tmp_path / PACKAGE / "cam"
    cam.mkdir(parents=True)
    (cam / "sender.py").write_text(
        "import json\nfrom aicmo_actors.runtime import Actor\n\nfrom aicmo_actors.billing import invoices\n"
    )
    (tmp_path / PACKAGE / "storage").mkdir()
    (tmp_path / PACKAGE / "storage" / "x.py").write_text("from ..cam import tables\n")
    (tmp_path / PACKAGE / "cli").mkdir()
    (tmp_path / PACKAGE / "cli" / "main.py").write_text("import aicmo_actors.cam\n")
    violations = find_violations(tmp_path)
    assert len(violations) == 2
    assert violations[0].startswith("aicmo_actors/cam/sender.py:4: imports aicmo_actors.billing")
    assert "not billing" in violations[0]
    assert violations[1].startswith("aicmo_actors/storage/x.py:1: imports aicmo_actors.cam")
