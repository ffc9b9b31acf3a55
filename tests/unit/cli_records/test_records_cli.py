"""The record commands in process, on a temporary SQLite database: lists, a lead's history,
relabelling, alerts, suppressions, campaign preview and archive, daily figures, `--database-url`;
bad input is one `error:` line and exit code 2."""

from __future__ import annotations

import argparse
import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aicmo_actors.cli.main import build_parser, main
from tests.unit.cli_records.conftest import CAMPAIGN_FILE, Folder, Run, one_error_line


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# -- --database-url ----------------------------------------------------------------------------------------


def every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += every_parser(child, (*path, name))
    return found


def test_every_commands_help_mentions_database_url() -> None:
    parser = build_parser()
    paths = every_parser(parser)
    assert ("leads", "list") in paths and ("replies", "relabel") in paths and ("migrate",) in paths
    for path in paths:
        sub = parser
        for name in path:
            (choices,) = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            sub = choices.choices[name]
        assert "--database-url URL" in sub.format_help(), path


def test_database_url_overrides_the_setting_wherever_it_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AICMO_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/setting.db")
    given = f"sqlite+aiosqlite:///{tmp_path}/given.db"
    assert run("campaign", "create", str(CAMPAIGN_FILE), "--database-url", given)[0] == 0
    assert (tmp_path / "given.db").exists() and not (tmp_path / "setting.db").exists()
    for args in (
        ("--database-url", given, "campaign", "list"),
        ("campaign", "list", f"--database-url={given}"),
        ("campaign", "--database-url", given, "list"),
    ):
        code, out, err = run(*args)
        assert code == 0, err
        assert "agency-intro" in out
    assert not (tmp_path / "setting.db").exists()
    # The commands that had the option of their own read the same one.
    code, out, _ = run("migrate", "--database-url", given)
    assert code == 0 and "already at" in out
    code, out, _ = run("dead-letters", "--database-url", given)
    assert code == 0 and "no dead letters" in out
    # Without the option, the setting is the database again.
    code, out, _ = run("campaign", "list")
    assert code == 0 and "no campaigns yet" in out


def test_database_url_without_a_url_is_a_usage_error(run: Run) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["leads", "list", "--database-url"])
    assert exited.value.code == 2


# -- leads -------------------------------------------------------------------------------------------------


def test_leads_list_pages_and_filters(folder: Folder, run: Run) -> None:
    code, out, _ = run("leads", "list", "--json")
    assert code == 0
    assert [r["email"] for r in json_lines(out)] == [
        "ann@one.example.com",
        "bob@two.example.com",
        "cy@three.example.com",
    ]
    code, out, _ = run("leads", "list", "--limit", "2", "--json")
    first = json_lines(out)
    code, out, _ = run("leads", "list", "--limit", "2", "--after", str(first[-1]["id"]), "--json")
    assert [r["id"] for r in first + json_lines(out)] == list(folder.leads.values())
    code, out, _ = run("leads", "list", "--state", "replied")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["id", "email", "campaign", "state"]
    assert len(lines) == 2 and "ann@one.example.com" in lines[1] and "replied" in lines[1]
    code, out, _ = run("leads", "list", "--limit", "1")
    assert out.splitlines()[-1] == f"(more may follow: add --after {folder.leads['ann']})"
    assert "bob@two.example.com" in run("leads", "list", "--email", "bob", "--campaign", "agency-intro")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("leads", "list", "--state", "happy"), "error: unknown state 'happy': one of active, paused"),
        (("leads", "list", "--campaign", "nope"), "error: no campaign named 'nope'"),
        (("leads", "show", "999"), "error: no lead with id 999"),
        (("leads", "show", "nobody@example.com"), "error: no lead 'nobody@example.com' in any campaign"),
        (("leads", "export", "--campaign", "nope"), "error: no campaign named 'nope'"),
        (("replies", "list", "--category", "keen"), "error: unknown category 'keen': one of bounce_hard"),
        (("replies", "relabel", "999", "interested"), "error: no inbound message #999"),
        (("alerts", "list", "--state", "lost"), "error: unknown alert state 'lost'"),
        (("alerts", "retry", "999"), "error: no alert #999"),
        (("suppressions", "remove", "nobody@example.com", "--reason", "x"), "error: nobody@example.com is not"),
        (("campaign", "preview", "nope", "--lead", "ann@one.example.com"), "error: no campaign named 'nope'"),
        (("campaign", "preview", "agency-intro", "--lead", "zed@example.com"), "error: no lead 'zed@example.com'"),
        (("campaign", "archive", "nope", "--yes"), "error: no campaign named 'nope'"),
        (("stats", "nope"), "error: no campaign named 'nope'"),
    ],
)
def test_a_mistake_is_one_line_and_exit_code_2(folder: Folder, run: Run, args: tuple[str, ...], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert one_error_line(err).startswith(message)


def test_relabel_with_an_unknown_category_is_one_line(folder: Folder, run: Run) -> None:
    code, _, err = run("replies", "relabel", str(folder.replies["auto"]), "keen")
    assert code == 2
    assert one_error_line(err).startswith("error: unknown category 'keen'")


def test_leads_show_prints_the_whole_history(folder: Folder, run: Run) -> None:
    ann = folder.leads["ann"]
    code, out, _ = run("leads", "show", str(ann))
    assert code == 0
    assert out.startswith(f"ann@one.example.com in campaign agency-intro (lead {ann}): replied")
    assert "email " in out and "step 1: SENT" in out
    assert f"inbound #{folder.replies['interested']}" in out and "interested" in out
    assert "alert #" in out and "timeline" in out
    by_address = run("leads", "show", "Ann@One.example.com")[1]
    assert by_address == out
    code, out, _ = run("leads", "show", str(ann), "--json")
    (history,) = json.loads(out)
    assert history["lead"]["id"] == ann and [e["step"] for e in history["emails"]] == [1]
    assert {"imported", "queued", "sent", "received", "acted on", "alert", "state"} <= {
        t["event"] for t in history["timeline"]
    }


def test_leads_export_writes_every_lead_as_csv(folder: Folder, run: Run) -> None:
    code, out, _ = run("leads", "export", "--out", "leads.csv")
    assert code == 0 and out.strip() == "3 leads written to leads.csv"
    with (folder.path / "leads.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["email"] for r in rows] == ["ann@one.example.com", "bob@two.example.com", "cy@three.example.com"]
    assert rows[0]["state"] == "replied" and rows[0]["campaign"] == "agency-intro"
    code, out, _ = run("leads", "export", "--campaign", "agency-intro", "--state", "paused")
    assert code == 0
    assert [r["email"] for r in csv.DictReader(out.splitlines())] == ["bob@two.example.com"]


# -- replies -----------------------------------------------------------------------------------------------


def test_replies_list_filters(folder: Folder, run: Run) -> None:
    code, out, _ = run("replies", "list", "--json")
    assert code == 0
    rows = json_lines(out)
    assert [r["id"] for r in rows] == [folder.replies["interested"], folder.replies["auto"]]
    assert rows[0]["category"] == "interested" and rows[0]["campaign"] == "agency-intro"
    assert [r["id"] for r in json_lines(run("replies", "list", "--category", "auto-reply", "--json")[1])] == [
        folder.replies["auto"]
    ]
    assert run("replies", "list", "--unhandled")[1].strip() == "no inbound messages match"
    text = run("replies", "list", "--handled", "--campaign", "agency-intro")[1]
    assert text.splitlines()[0].split()[:3] == ["id", "received", "(UTC)"]
    assert "interested" in text and "auto_reply" in text
    with pytest.raises(SystemExit):
        main(["replies", "list", "--handled", "--unhandled"])


def test_relabel_prints_what_changed_for_the_lead(folder: Folder, run: Run) -> None:
    auto = folder.replies["auto"]
    code, out, _ = run("replies", "relabel", str(auto), "interested")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"inbound #{auto}: auto_reply -> interested (by cli:")
    assert f"lead {folder.leads['bob']} (bob@two.example.com) in campaign agency-intro: paused -> replied" in lines[1]
    assert any(line.strip().startswith("alert #") for line in lines)
    code, out, _ = run("replies", "relabel", str(auto), "interested")
    assert code == 0 and "nothing changed" in out
    code, out, _ = run("replies", "relabel", str(auto), "unsubscribe", "--json")
    done = json.loads(out)
    assert done["lead_after"] == {**done["lead_after"], "state": "unsubscribed", "suppressed": True}
    assert "bob@two.example.com" in run("suppressions", "list")[1]
    history = json.loads(run("leads", "show", str(folder.leads["bob"]), "--json")[1])[0]
    assert [n["to"] for n in history["inbound"][0]["relabelled"]] == ["interested", "unsubscribe"]


# -- alerts, suppressions ----------------------------------------------------------------------------------


def test_alerts_list_and_retry(folder: Folder, run: Run) -> None:
    import asyncio

    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.storage.engine import make_engine

    (alert,) = json_lines(run("alerts", "list", "--json")[1])
    assert (alert["kind"], alert["state"]) == ("interested", "pending")
    code, _, err = run("alerts", "retry", str(alert["id"]))
    assert code == 0

    async def fail_it(state: str) -> None:
        engine = make_engine(folder.url)
        try:
            await CamStore(engine).alerts.finish(int(alert["id"]), state, folder_now(), "email: 550 no such user")
        finally:
            await engine.dispose()

    asyncio.run(fail_it("failed"))
    assert "email: 550 no such user" in run("alerts", "list", "--state", "failed")[1]
    code, out, _ = run("alerts", "retry", str(alert["id"]))
    assert code == 0 and out.startswith(f"alert #{alert['id']} is pending again")
    assert [a["state"] for a in json_lines(run("alerts", "list", "--json")[1])] == ["pending"]
    asyncio.run(fail_it("delivered"))
    code, _, err = run("alerts", "retry", str(alert["id"]))
    assert code == 2 and one_error_line(err) == f"error: alert #{alert['id']} was delivered already: nothing to retry"


def folder_now() -> datetime:
    from tests.integration.test_cam_records import NOW

    return NOW


def test_suppressions_list_and_remove(folder: Folder, run: Run) -> None:
    assert run("suppress", "gone@example.com", "--reason", "asked")[0] == 0  # the old command still works
    (row,) = json_lines(run("suppressions", "list", "--json")[1])
    assert (row["address"], row["reason"], row["source"]) == ("gone@example.com", "asked", "command line")
    code, out, _ = run("suppressions", "remove", "GONE@example.com", "--reason", "asked to hear from us")
    assert code == 0 and out.startswith("gone@example.com removed from the suppression list")
    assert run("suppressions", "list")[1].strip() == "no suppressed addresses"
    with pytest.raises(SystemExit):
        main(["suppressions", "remove", "gone@example.com"])  # --reason is required


def test_removing_a_suppression_asks_on_a_terminal(folder: Folder, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run("suppress", "gone@example.com")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, _, err = run("suppressions", "remove", "gone@example.com", "--reason", "x")
    assert code == 1 and one_error_line(err) == "error: nothing changed: not confirmed"
    assert "gone@example.com" in run("suppressions", "list")[1]
    assert run("suppressions", "remove", "gone@example.com", "--reason", "x", "--yes")[0] == 0
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    run("suppress", "gone@example.com")
    assert run("suppressions", "remove", "gone@example.com", "--reason", "x")[0] == 0


# -- campaigns, stats --------------------------------------------------------------------------------------


def test_campaign_preview_renders_every_step_for_the_lead(folder: Folder, run: Run) -> None:
    code, out, _ = run("campaign", "preview", "agency-intro", "--lead", "ann@one.example.com")
    assert code == 0
    assert out.splitlines()[0] == "=== step 1, variant A (sent 2026-02-02 08:00) ==="
    assert "From: Alex Berger <alex@outreach.example.com>" in out
    assert f"Message-ID: <lead{folder.leads['ann']}.step1@outreach.example.com>" in out
    assert "=== step 2, variant A (4 day(s) after the step before) ===" in out
    assert f"In-Reply-To: <lead{folder.leads['ann']}.step1@outreach.example.com>" in out
    assert "Subject: Re: step 1" in out  # the follow-up answers the first email as it was sent
    assert "Hi Ann," in out and out.rstrip().endswith("nothing was sent")
    previews = json_lines(run("campaign", "preview", "agency-intro", "--lead", "cy@three.example.com", "--json")[1])
    assert [(p["step"], p["variant"]) for p in previews] == [(1, "A"), (1, "B"), (2, "A"), (3, "A")]
    assert previews[1]["headers"]["Subject"] == "Cy, an idea for Acme"


def test_an_archived_campaign_is_not_resumed_or_imported_into(folder: Folder, run: Run) -> None:
    code, out, _ = run("campaign", "archive", "agency-intro", "--yes")
    assert code == 0 and out.startswith("campaign 'agency-intro' archived: 2 lead(s) stopped")
    assert (
        run("campaign", "archive", "agency-intro", "--yes")[1].strip().endswith("was archived already: nothing changed")
    )
    code, _, err = run("campaign", "resume", "agency-intro")
    assert code == 2 and one_error_line(err) == "error: campaign 'agency-intro' is archived: it cannot be resumed"
    csv_file = folder.path / "more.csv"
    csv_file.write_text("email\nnew@four.example.com\n")
    code, _, err = run("leads", "import", str(csv_file), "--campaign", "agency-intro")
    assert code == 2 and one_error_line(err).endswith("is archived: it cannot be imported into")


def test_stats_by_day(folder: Folder, run: Run) -> None:
    code, out, _ = run("stats", "agency-intro", "--by", "day", "--json")
    assert code == 0
    (day,) = json_lines(out)
    assert day == {
        "day": "2026-02-02",
        "timezone": "Europe/Berlin",
        "sent": 2,
        "hard_bounces": 0,
        "soft_bounces": 0,
        "complaints": 0,
        "replies": {"interested": 1, "auto_reply": 1},
        "human_replies": 1,
    }
    lines = run("stats", "agency-intro")[1].splitlines()
    assert lines[0] == "campaign agency-intro, per day in Europe/Berlin:"
    assert lines[2].split()[:3] == ["2026-02-02", "2", "1"]


def test_changes_are_in_the_audit_trail(folder: Folder, run: Run) -> None:
    import asyncio

    from aicmo_actors.identity.repos import AuditRepo
    from aicmo_actors.storage.engine import make_engine

    (folder.path / "two.csv").write_text(
        "email,first_name,company\ndee@four.example.com,Dee,Four\nann@one.example.com,Ann,One\nbad,Bad,Row\n",
        encoding="utf-8",
    )
    assert run("suppress", "gone@example.com")[0] == 0
    assert run("campaign", "pause", "agency-intro")[0] == 0
    assert run("campaign", "resume", "agency-intro")[0] == 0
    assert run("campaign", "pause", "nope")[0] != 0  # refused: nothing recorded
    assert run("leads", "import", "two.csv", "--campaign", "agency-intro")[0] == 3  # one row rejected
    assert run("mailbox", "resume", "alex@outreach.example.com")[0] == 0
    assert run("mailbox", "resume", "nobody@outreach.example.com")[0] != 0
    assert run("replies", "relabel", str(folder.replies["auto"]), "interested")[0] == 0
    assert run("suppressions", "remove", "gone@example.com", "--reason", "asked to hear from us")[0] == 0
    assert run("campaign", "archive", "agency-intro", "--yes")[0] == 0

    async def audit() -> list[tuple[str, str, str | None, dict[str, Any]]]:
        engine = make_engine(folder.url)
        try:
            rows = await AuditRepo(engine).list()
        finally:
            await engine.dispose()
        assert {r.source for r in rows} == {"cli"} and all(r.actor.startswith("cli:") for r in rows)
        return sorted((r.action, r.source, r.target, r.detail) for r in rows)

    imported = {"file": "two.csv", "rows": 3, "imported": 1, "existing": 1, "suppressed": 0, "duplicates": 0}
    assert asyncio.run(audit()) == [
        ("campaign.archive", "cli", "agency-intro", {}),
        ("campaign.create", "cli", "agency-intro", {"steps": 3, "file": "campaign.toml"}),  # the folder's
        ("campaign.pause", "cli", "agency-intro", {}),
        ("campaign.resume", "cli", "agency-intro", {}),
        ("leads.import", "cli", "agency-intro", {**imported, "rejected": 1}),
        ("mailbox.resume", "cli", "alex@outreach.example.com", {}),
        ("reply.relabel", "cli", str(folder.replies["auto"]), {"category": "interested"}),
        ("suppression.add", "cli", "gone@example.com", {"reason": "manual"}),
        ("suppression.remove", "cli", "gone@example.com", {"reason": "asked to hear from us"}),
    ]
