"""client_review: the client approves each piece of work, or asks for changes, by link or by reply.

What the module exports (docs/modules.md): its actor, its store, `client_review_supervisor`
(the one function that builds its supervision tree) and `client_review_routes` (the client's
review page, served by the service's HTTP server). See docs/client_review.md.

The names load on first use (PEP 562): importing one pure file (`rules`, `texts`) does not
load the actor, the database layer and the HTTP handlers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.client_review.repos import ReviewStore
    from aicmo_actors.client_review.reviews import REVIEWS, Reviews
    from aicmo_actors.client_review.web import client_review_routes
    from aicmo_actors.client_review.wiring import client_review_supervisor

_EXPORTS = {
    "REVIEWS": "aicmo_actors.client_review.reviews",
    "Reviews": "aicmo_actors.client_review.reviews",
    "ReviewStore": "aicmo_actors.client_review.repos",
    "client_review_routes": "aicmo_actors.client_review.web",
    "client_review_supervisor": "aicmo_actors.client_review.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["REVIEWS", "ReviewStore", "Reviews", "client_review_routes", "client_review_supervisor"]
