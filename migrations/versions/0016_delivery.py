"""The delivery module's tables (prefix delivery_).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

PLACEHOLDER: written by the session building issue 19 (nothing yet).
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
