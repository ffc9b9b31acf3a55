"""`python run.py package check|create|list` in process (`cli.main.main`), AICMO_PACKAGES_DIR in tmp_path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from aicmo_actors.cli.main import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("package*.toml"))
BROKEN = 'name = "broken"\ntitle = "Broken"\nprice = "abc"\ncurrency = "EUR"\n'

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The packages directory (not made yet), in a working folder with no .env and no other AICMO_ setting."""
    for name in list(os.environ):
        if name.upper().startswith("AICMO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "packages"
    monkeypatch.setenv("AICMO_PACKAGES_DIR", str(folder))
    return folder


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], packages: Path) -> Run:
    """`run("package", "list")`: the exit code, stdout and stderr of `python run.py package list`."""

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def one_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# -- check ----------------------------------------------------------------------------------------------------


def test_check_the_examples(run: Run) -> None:
    code, out, err = run("package", "check", *map(str, EXAMPLES))
    assert (code, err) == (0, "")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == [p.stem for p in EXAMPLES]
    assert all(line.startswith("ok: ") for line in out.splitlines())
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_passes_check(run: Run, example: Path) -> None:
    code, out, _ = run("package", "check", str(example))
    assert code == 0 and out.startswith(f"ok: {example.stem}: ")


def test_check_with_no_packages_directory_or_an_empty_one(run: Run, packages: Path) -> None:
    code, out, err = run("package", "check")
    assert (code, out) == (1, "")
    assert one_error(err) == (
        f"error: no packages to check: {packages} (AICMO_PACKAGES_DIR) does not exist; "
        "make one with python run.py package create NAME"
    )
    packages.mkdir()
    (packages / "notes.txt").write_text("not a package")
    code, _, err = run("package", "check")
    assert code == 1 and "holds no package (*.toml)" in one_error(err)


def test_check_prints_every_problem_like_a_compiler(run: Run, packages: Path) -> None:
    assert run("package", "create", "growth")[0] == 0
    (packages / "broken.toml").write_text(BROKEN)
    code, out, err = run("package", "check")
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == f'{packages}/broken.toml:3: price: "abc" is not a number (write 2500 or "2500.00")'
    assert f"{packages}/broken.toml: billing: missing: add billing = " in out
    assert lines[-2].startswith("ok: growth: 2,500.00 EUR monthly; 4 blog posts")
    assert lines[-1] == "6 problems in 1 file; 1 ok"
    # By name, one at a time.
    assert run("package", "check", "growth")[0] == 0
    assert run("package", "check", "broken")[0] == 1


def test_check_an_unknown_name_lists_the_known_ones(run: Run, packages: Path) -> None:
    run("package", "create", "growth")
    code, out, _ = run("package", "check", "starter", "Not A Name")
    assert code == 1
    assert out.splitlines() == [
        f"{packages}/starter.toml: no such package in {packages} (the packages there: growth)",
        '"Not A Name": not a package name (lower-case letters, digits and hyphens, 1 to 60 characters, '
        "not starting or ending with a hyphen)",
        "2 problems in 2 files; 0 ok",
    ]
    code, out, _ = run("package", "check", "nowhere/growth.toml")
    assert (code, out.splitlines()[0]) == (1, "nowhere/growth.toml: no such file")


def test_check_json(run: Run, packages: Path) -> None:
    packages.mkdir()
    (packages / "broken.toml").write_text(BROKEN)
    code, out, _ = run("package", "check", "--json", "broken", str(EXAMPLES[0]))
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    broken, good = report["files"]
    assert broken["ok"] is False and broken["summary"] is None
    assert broken["problems"][0] == {
        "line": 3,
        "field": "price",
        "message": '"abc" is not a number (write 2500 or "2500.00")',
    }
    assert good["ok"] is True and good["problems"] == [] and good["summary"].startswith(EXAMPLES[0].stem)


# -- create ---------------------------------------------------------------------------------------------------


def test_create_from_the_example_then_check(run: Run, packages: Path) -> None:
    code, out, err = run("package", "create", "growth")
    path = packages / "growth.toml"
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"wrote {path}", "edit it, then: python run.py package check growth"]
    text = path.read_text()
    assert 'name = "growth"' in text and "# Required. The package's name" in text  # the comments come along
    assert run("package", "check", "growth")[0] == 0
    assert [p.name for p in packages.iterdir()] == ["growth.toml"]  # no temporary file left


def test_create_refuses_to_overwrite_without_force(run: Run, packages: Path) -> None:
    run("package", "create", "growth")
    path = packages / "growth.toml"
    path.write_text(path.read_text() + "# my edits\n")
    code, out, err = run("package", "create", "growth")
    assert (code, out) == (2, "")
    assert one_error(err) == f"error: {path} already exists: nothing was written (--force replaces it)"
    assert path.read_text().endswith("# my edits\n")
    assert run("package", "create", "growth", "--force")[0] == 0
    assert not path.read_text().endswith("# my edits\n")


def test_create_from_a_file_sets_its_name(run: Run, packages: Path) -> None:
    milestones = REPO / "examples" / "package-milestones.toml"
    code, _, _ = run("package", "create", "relaunch", "--from", str(milestones))
    assert code == 0
    copied = (packages / "relaunch.toml").read_text()
    assert copied == milestones.read_text().replace('name = "package-milestones"', 'name = "relaunch"')
    code, out, _ = run("package", "check", "relaunch")
    assert code == 0 and out.startswith("ok: relaunch: 12,000.00 EUR in 3 milestones")


def test_create_checks_the_file_first(run: Run, packages: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    code, _, err = run("package", "create", "copy", "--from", str(broken))
    assert code == 1
    *listed, last = err.splitlines()
    assert listed[0] == f'{broken}:3: price: "abc" is not a number (write 2500 or "2500.00")'
    assert last == f"error: {broken}: 6 problems (listed above): nothing was written"
    assert not packages.exists()
    code, _, err = run("package", "create", "copy", "--from", str(tmp_path / "missing.toml"))
    assert code == 2 and one_error(err) == f"error: --from {tmp_path / 'missing.toml'}: no such file"


@pytest.mark.parametrize("name", ["Growth", "../growth", "growth.toml", "growth-"])
def test_create_refuses_a_bad_name(run: Run, packages: Path, name: str) -> None:
    code, _, err = run("package", "create", name)
    assert code == 2 and "not a package name" in one_error(err)
    assert not packages.exists()


# -- list -----------------------------------------------------------------------------------------------------


def test_list_with_no_packages(run: Run, packages: Path) -> None:
    code, out, _ = run("package", "list")
    assert code == 0
    assert out == (
        f"no packages: {packages} (AICMO_PACKAGES_DIR) does not exist yet; "
        "make one with python run.py package create NAME\n"
    )
    assert run("package", "list", "--json")[:2] == (0, "[]\n")


def test_list_shows_good_and_bad_packages(run: Run, packages: Path) -> None:
    run("package", "create", "growth")
    run("package", "create", "launch", "--from", str(REPO / "examples" / "package-one-off.toml"))
    (packages / "broken.toml").write_text(BROKEN)
    code, out, _ = run("package", "list")
    assert code == 0
    assert out.splitlines() == [
        "broken  invalid: 6 problems (python run.py package check broken)",
        "growth      2,500.00 EUR  monthly     4 blog posts, 12 social posts on LinkedIn, 1 newsletter by email "
        "per month",
        "launch      1,800.00 EUR  one_off     1 landing page on the website, 6 social posts on LinkedIn "
        "within 1 month",
    ]
    code, out, _ = run("package", "list", "--json")
    broken, growth, launch = json.loads(out)
    assert broken["valid"] is False and len(broken["problems"]) == 6
    assert growth["valid"] is True and growth["package"]["price"] == "2500.00"
    assert growth["package"]["deliverables"][0]["type"] == "blog_post"
    assert launch["summary"].startswith("launch: 1,800.00 EUR one-off;")


# -- settings -------------------------------------------------------------------------------------------------


def test_a_bad_setting_is_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICMO_CLIENT_LINK_DAYS", "0")
    code, _, err = run("package", "list")
    assert code == 2 and "AICMO_CLIENT_LINK_DAYS" in one_error(err)
