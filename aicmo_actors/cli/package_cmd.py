"""`python run.py package ...`: the service packages, one TOML file each in AICMO_PACKAGES_DIR (docs/packages.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicmo_actors.cli.errors import UserError

if TYPE_CHECKING:
    from aicmo_actors.orchestration.packages import PackageError, Problem
    from contracts.packages import PackageSpec

#: The commented example: what `package create NAME` copies when no --from FILE is given.
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "package.toml"
SETTING = "AICMO_PACKAGES_DIR"

Checked = tuple[Path, "PackageSpec | PackageError"]


def _packages_dir() -> Path:
    from aicmo_actors.cli.main import load_settings

    return load_settings().packages_dir


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"line": problem.line, "field": problem.field, "message": problem.message}


def _is_path(target: str) -> bool:
    """`package check` takes file paths and package names: a path has a folder in it or ends in .toml."""
    return "/" in target or os.sep in target or target.endswith(".toml")


def _check_target(packages_dir: Path, target: str) -> Checked:
    from aicmo_actors.orchestration.packages import PackageError, find_package, load_package

    path = Path(target) if _is_path(target) else packages_dir / f"{target}.toml"
    try:
        return path, load_package(path) if _is_path(target) else find_package(packages_dir, target)
    except PackageError as exc:
        return path, exc


def _every_package(packages_dir: Path) -> list[Checked]:
    """Every package file of the packages directory; none there (or no directory) is a `UserError` (exit 1)."""
    from aicmo_actors.orchestration.packages import list_packages

    found = list_packages(packages_dir)
    if not found:
        why = "does not exist" if not packages_dir.exists() else "holds no package (*.toml)"
        raise UserError(
            f"no packages to check: {packages_dir} ({SETTING}) {why}; make one with python run.py package create NAME",
            exit_code=1,
        )
    return found


def cmd_package_check(args: argparse.Namespace) -> int:
    from aicmo_actors.orchestration.packages import PackageError, describe

    packages_dir = _packages_dir()
    checked = [_check_target(packages_dir, t) for t in args.targets] if args.targets else _every_package(packages_dir)
    bad = [(path, got) for path, got in checked if isinstance(got, PackageError)]
    if args.json:
        files = [
            {
                "file": str(path),
                "ok": not isinstance(got, PackageError),
                "summary": None if isinstance(got, PackageError) else describe(got),
                "problems": [_problem_json(p) for p in got.problems] if isinstance(got, PackageError) else [],
            }
            for path, got in checked
        ]
        print(json.dumps({"ok": not bad, "files": files}, ensure_ascii=False))
        return 1 if bad else 0
    for _path, got in checked:
        if isinstance(got, PackageError):
            print("\n".join(got.lines()))
        else:
            print(f"ok: {describe(got)}")
    if bad:
        problems = sum(len(got.problems) for _path, got in bad)
        good = len(checked) - len(bad)
        print(f"{_plural(problems, 'problem')} in {_plural(len(bad), 'file')}; {good} ok")
        return 1
    return 0


def _template(source: str | None, name: str) -> str:
    """The text of the new package `name`: a checked copy of `source`, or of the commented example."""
    from aicmo_actors.orchestration.packages import PackageError, parse_package, with_name

    path = Path(source) if source is not None else EXAMPLE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if source is None:
            raise UserError(f"the example package {EXAMPLE} is missing: give one with --from FILE") from None
        raise UserError(f"--from {source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--from {source}: cannot read it: {exc}") from None
    try:
        parse_package(text, source=str(path))
    except PackageError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        raise UserError(
            f"{path}: {_plural(len(exc.problems), 'problem')} (listed above): nothing was written", exit_code=1
        ) from None
    try:
        return with_name(text, name)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}: nothing was written") from None


def cmd_package_create(args: argparse.Namespace) -> int:
    from aicmo_actors.orchestration.packages import PackageError, package_path, parse_package

    packages_dir = _packages_dir()
    try:
        path = package_path(packages_dir, args.name)
    except PackageError as exc:
        raise UserError(str(exc)) from None
    if path.exists() and not args.force:
        raise UserError(f"{path} already exists: nothing was written (--force replaces it)")
    text = _template(args.source, args.name)
    try:
        parse_package(text, source=str(path), file_stem=args.name)
    except PackageError as exc:  # the name line could not be rewritten cleanly (a multi-line string, say)
        raise UserError(f"the copy named {args.name!r} is not valid ({exc}): nothing was written") from None
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        packages_dir.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
    print(f"edit it, then: python run.py package check {args.name}")
    return 0


def _list_json(path: Path, got: PackageSpec | PackageError) -> dict[str, Any]:
    from aicmo_actors.orchestration.packages import PackageError, describe

    if isinstance(got, PackageError):
        return {
            "name": path.stem,
            "file": str(path),
            "valid": False,
            "problems": [_problem_json(p) for p in got.problems],
        }
    return {
        "name": got.name,
        "file": str(path),
        "valid": True,
        "summary": describe(got),
        "package": got.model_dump(mode="json"),
    }


def cmd_package_list(args: argparse.Namespace) -> int:
    from aicmo_actors.orchestration.packages import NAME, PackageError, deliveries, list_packages, money

    packages_dir = _packages_dir()
    found = list_packages(packages_dir)
    if args.json:
        print(json.dumps([_list_json(path, got) for path, got in found], ensure_ascii=False))
        return 0
    if not found:
        where = "does not exist yet" if not packages_dir.exists() else "holds no package yet"
        print(f"no packages: {packages_dir} ({SETTING}) {where}; make one with python run.py package create NAME")
        return 0
    width = max(len(path.stem) for path, _got in found)
    for path, got in found:
        if isinstance(got, PackageError):
            again = path.stem if NAME.fullmatch(path.stem) else str(path)
            count = _plural(len(got.problems), "problem")
            print(f"{path.stem:<{width}}  invalid: {count} (python run.py package check {again})")
        else:
            price = money(got.price, got.currency)
            print(f"{got.name:<{width}}  {price:>16}  {got.billing:<10}  {deliveries(got)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `package` command."""
    package = sub.add_parser(
        "package",
        help="service packages (what clients buy): check, create and list their TOML files",
        description=f"Service packages: one TOML file each in {SETTING} (default ./packages), named after the "
        "package. examples/package.toml explains every key; docs/packages.md has the format in full. A signed "
        "deal keeps a copy of its package: editing a file later does not change a signed client's terms.",
    )
    psub = package.add_subparsers(dest="package_command", metavar="ACTION", required=True)

    p = psub.add_parser(
        "check",
        help="check package files; every problem with its line",
        description="Check each FILE (a path: it has a / or ends in .toml) or NAME (a package in "
        f"{SETTING}); with none, every *.toml in {SETTING}. Prints FILE:LINE: key: problem for each problem and "
        "'ok: <summary>' for each good package. Exits 0 when every one is good, 1 when one has a problem or "
        "there is no package to check.",
    )
    p.add_argument("targets", nargs="*", metavar="FILE_OR_NAME", help="package files or names (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_package_check)

    p = psub.add_parser(
        "create",
        help="write a new package file to edit, from the commented example or a file",
        description=f"Write {SETTING}/NAME.toml (making the folder): a copy of --from FILE (checked first) or of "
        "the commented example (examples/package.toml), with its name set to NAME. An existing file is "
        "replaced only with --force.",
    )
    p.add_argument("name", metavar="NAME", help="the package's name: lower-case letters, digits and hyphens (1-60)")
    p.add_argument("--from", dest="source", metavar="FILE", help="copy this package file (default: the example)")
    p.add_argument("--force", action="store_true", help="replace NAME.toml if it exists")
    p.set_defaults(func=cmd_package_create)

    p = psub.add_parser(
        "list",
        help="every package: name, price, billing, what it delivers",
        description=f"One line per package file in {SETTING}, sorted by name: its price, billing and "
        "deliverables, or how many problems keep it from being used.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON array")
    p.set_defaults(func=cmd_package_list)
