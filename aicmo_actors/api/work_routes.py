"""Routes of the work after the deal (production, QC, review, delivery). PLACEHOLDER."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
