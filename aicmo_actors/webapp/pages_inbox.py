"""The unified inbox: every inbound message, hot replies first; one message with its thread
and the classifier's evidence; correcting its category, marking it handled, suppressing
its sender."""

from __future__ import annotations

import asyncio
from datetime import datetime
from operator import itemgetter
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicmo_actors.api.cam_routes import retry_alert_now as tell_alerts
from aicmo_actors.api.control_routes import audit_line
from aicmo_actors.cam.repos.inbound import HOT, InboxKey, inbox_key
from aicmo_actors.cam.repos.records import RecordError
from aicmo_actors.cam.wiring import lead_rules
from aicmo_actors.identity.roles import Principal
from aicmo_actors.webapp.web import Web, page
from contracts.cam import ReplyCategory

PAGE = 50
#: How much of a message's text the page shows (a long thread quoted in full says little more).
TEXT_LIMIT = 20_000
CATEGORIES = [c.value for c in ReplyCategory]
HOT_CATEGORIES = sorted(c.value for c in HOT)


def cursor_text(key: InboxKey) -> str:
    """The `after` of the next page's link: hot (1 or 0), when it arrived, id."""
    hot, at, inbound_id = key
    return f"{int(hot)}_{at.isoformat()}_{inbound_id}"


def parse_cursor(text: str) -> InboxKey:
    """`cursor_text` read back; a `ValueError` when it is not one."""
    hot, at, inbound_id = text.split("_")
    if hot not in ("0", "1"):
        raise ValueError(text)
    when = datetime.fromisoformat(at)
    if when.tzinfo is None:
        raise ValueError(text)
    return hot == "1", when, int(inbound_id)


def reply_text(raw: bytes) -> tuple[str, str]:
    """(their own words, the whole text) of a stored message, read within the classifier's limits."""
    from aicmo_actors.cam.classify.limits import ParseLimits, bound
    from aicmo_actors.cam.classify.parse import body_text, normalise_line_ends
    from aicmo_actors.cam.classify.quotes import strip_quoted

    text = body_text(bound(normalise_line_ends(raw), ParseLimits()).raw)
    return strip_quoted(text).strip()[:TEXT_LIMIT], text.strip()[:TEXT_LIMIT]


def _query(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


@page("read")
async def inbox(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    filters = {
        "category": _query(request, "category"),
        "campaign": _query(request, "campaign"),
        "mailbox": _query(request, "mailbox"),
        "unhandled": "1" if request.query_params.get("unhandled") else None,
    }
    after_text = _query(request, "after")
    problem = ""
    items: list[dict[str, Any]] = []
    try:
        after = parse_cursor(after_text) if after_text else None
    except ValueError:
        after, after_text, problem = None, None, "That page link is not one of ours: showing the first page."
    try:
        items = await api.cam.inbound.inbox(
            category=filters["category"],
            campaign=filters["campaign"],
            mailbox=filters["mailbox"],
            unhandled=bool(filters["unhandled"]),
            after=after,
            limit=PAGE,
        )
    except RecordError as exc:
        problem = str(exc)
    next_after = cursor_text(inbox_key(items[-1])) if len(items) == PAGE else None
    return web.render(
        request,
        "inbox.html",
        title="Inbox",
        items=items,
        filters=filters,
        categories=CATEGORIES,
        hot_categories=HOT_CATEGORIES,
        campaigns=list(await api.cam.campaigns.all()),
        mailboxes=await api.cam.inbound.mailboxes(),
        after=after_text,
        next_after=next_after,
        notice=problem,
    )


def _thread(history: dict[str, Any] | None, item: dict[str, Any]) -> list[dict[str, Any]]:
    """What we sent to the lead and what came back from it, in time order."""
    if history is None:
        return [{"kind": "in", "at": item["arrived_at"], "row": item}]
    entries = [
        {"kind": "out", "at": e["sent_at"] or e["queued_at"], "row": e} for e in history["emails"] if e["queued_at"]
    ]
    entries += [{"kind": "in", "at": i["received_at"] or i["stored_at"], "row": i} for i in history["inbound"]]
    return sorted(entries, key=lambda e: (datetime.fromisoformat(e["at"]), e["kind"] == "in", e["row"]["id"]))


@page("read")
async def message(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    inbound_id: int = request.path_params["inbound_id"]
    item = await api.cam.inbound.inbox_item(inbound_id)
    if item is None:
        return web.render(
            request, "error.html", 404, title="Not found", text=f"There is no inbound message #{inbound_id}."
        )
    history = await api.cam.leads.history(item["lead_id"]) if item["lead_id"] is not None else None
    raw = await api.cam.inbound.raw(inbound_id) or b""
    own_words, whole = await asyncio.to_thread(reply_text, raw)
    sender = item["from_address"]
    suppressed = bool(sender) and bool(await api.cam.leads.suppressed([sender]))
    return web.render(
        request,
        "inbox_message.html",
        title=f"Message #{inbound_id}",
        item=item,
        lead=history["lead"] if history else None,
        thread=_thread(history, item),
        own_words=own_words,
        whole=whole,
        categories=CATEGORIES,
        sender_suppressed=suppressed,
    )


@page("operate")
async def relabel(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    inbound_id: int = request.path_params["inbound_id"]
    path = f"/inbox/{inbound_id}"
    category = str((await request.form()).get("category", "")).strip()
    detail = {"category": category}
    line = audit_line(
        api, who, "reply.relabel", str(inbound_id), detail, source="web", only_if=itemgetter("relabelled")
    )
    try:
        done = await api.cam.inbound.relabel(
            inbound_id,
            category,
            by=who.name,
            now=api.now(),
            rules=lead_rules(api.settings),
            also=line,
        )
    except RecordError as exc:
        return web.done(path, problem=str(exc))
    for alert_id in done["alert_ids"]:
        await tell_alerts(api, alert_id)
    if not done["relabelled"]:
        return web.done(path, f"It is labelled {category} already: nothing changed.")
    said = f"Relabelled {done['previous_category']} → {category}."
    before, after = done["lead_before"], done["lead_after"]
    if before is not None and after is not None and before["state"] != after["state"]:
        said += f" Lead {done['lead_id']}: {before['state']} → {after['state']}."
    elif after is not None:
        said += f" Lead {done['lead_id']}: still {after['state']} ({done['cause']})."
    else:
        said += f" No lead changed: {done['cause']}."
    if done["alert_ids"]:
        said += " An alert goes to the team."
    return web.done(path, said)


@page("operate")
async def handled(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    inbound_id: int = request.path_params["inbound_id"]
    path = f"/inbox/{inbound_id}"
    item = await api.cam.inbound.inbox_item(inbound_id)
    if item is None:
        return web.done("/inbox", problem=f"There is no inbound message #{inbound_id}.")
    line = audit_line(api, who, "reply.handled", str(inbound_id), {}, source="web", only_if=bool)
    marked = await api.cam.inbound.mark_handled(inbound_id, who.name, api.now(), also=line)
    if not marked:
        return web.done(path, "It was marked handled already.")
    return web.done(path, "Marked handled.")


@page("operate")
async def suppress(request: Request, web: Web, who: Principal) -> Response:
    api = web.api
    inbound_id: int = request.path_params["inbound_id"]
    path = f"/inbox/{inbound_id}"
    item = await api.cam.inbound.inbox_item(inbound_id)
    if item is None:
        return web.done("/inbox", problem=f"There is no inbound message #{inbound_id}.")
    address = item["from_address"]
    if not address:
        return web.done(path, problem="This message has no sender address to suppress.")
    line = audit_line(
        api, who, "suppression.add", address, {"reason": "manual", "inbound_id": inbound_id}, source="web"
    )
    new = await api.cam.leads.suppress(address, "manual", f"web:{who.name}", api.now(), also=line)
    if not new:
        return web.done(path, f"{address} was suppressed already.")
    return web.done(path, f"{address} is suppressed: never written to again, in any campaign.")


ROUTES = [
    Route("/inbox", inbox, methods=["GET"]),
    Route("/inbox/{inbound_id:int}", message, methods=["GET"]),
    Route("/inbox/{inbound_id:int}/relabel", relabel, methods=["POST"]),
    Route("/inbox/{inbound_id:int}/handled", handled, methods=["POST"]),
    Route("/inbox/{inbound_id:int}/suppress", suppress, methods=["POST"]),
]
