"""Outgoing JSON webhooks (alerts), over httpx."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class WebhookError(Exception):
    """The webhook could not be delivered (network error or non-2xx answer)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class WebhookClient:
    """One reused HTTP client; `post_json` raises `WebhookError` unless the answer is 2xx."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._client: httpx.AsyncClient | None = None
        self._timeout = timeout_s

    async def post_json(self, url: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> int:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.post(url, json=dict(payload), headers=dict(headers))
        except httpx.HTTPError as exc:
            raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return response.status_code
        # 4xx other than 408/429 will not get better by retrying.
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise WebhookError(f"HTTP {response.status_code}", permanent=permanent)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
