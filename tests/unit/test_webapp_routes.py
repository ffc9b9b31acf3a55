"""Every page of the web app declares who may use it (`web.page(level)`), or is one of the
public sign-in routes: a new page without a rule fails here."""

from __future__ import annotations

from starlette.routing import Mount, Route

from aicmo_actors.api.auth import RULE_ATTRIBUTE
from aicmo_actors.webapp.app import PUBLIC, build_webapp


def test_every_page_has_a_rule() -> None:
    app = build_webapp(None, b"k" * 32)  # type: ignore[arg-type]  (routes only: no request is made)
    pages = [r for r in app.routes if isinstance(r, Route)]
    assert {r.path for r in pages} >= {"/login", "/logout", "/modules"}
    missing = [
        f"{sorted(r.methods or [])} {r.path}"
        for r in pages
        if r.path not in PUBLIC and getattr(r.endpoint, RULE_ATTRIBUTE, None) not in ("read", "operate", "own")
    ]
    assert not missing, f"pages without a rule: {missing}"
    writes = [r for r in pages if r.methods and "POST" in r.methods and r.path not in PUBLIC]
    assert all(getattr(r.endpoint, RULE_ATTRIBUTE) != "read" for r in writes), "a POST page open to viewers"
    assert [r.path for r in app.routes if isinstance(r, Mount)] == ["/static"]
