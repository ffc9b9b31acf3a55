"""An OpenAI-compatible chat-completions client (`POST {base_url}/chat/completions`) over httpx.

    client = ChatClient("http://127.0.0.1:11434/v1", model="llama3.1", api_key=None, timeout_s=60)
    answer = await client.complete([{"role": "user", "content": "..."}])
    answer.text, answer.total_tokens

One request per call, no retry loop and no sleep inside: the caller decides when to try again
(production retries across ticks). Every failure is one exception type, `LlmError`, whose
`permanent` says whether asking again can help (a 4xx other than 408/409/429, an answer
that is not a completion: permanent; a timeout, a connection error, a 5xx, 429: not).
The key is sent as a Bearer token and never logged or put in an error message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ChatClient", "Completion", "LlmError"]

_TEMPORARY_STATUSES = {408, 409, 425, 429}


class LlmError(Exception):
    """The model could not answer; `permanent`: asking again the same way will not help."""

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatClient:
    """One model behind one OpenAI-compatible endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the generator's URL must start with http:// or https://: {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s), transport=transport)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.TimeoutException:
            raise LlmError("the generator did not answer in time") from None
        except httpx.HTTPError as exc:
            raise LlmError(f"the generator could not be reached: {type(exc).__name__}") from None
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code not in _TEMPORARY_STATUSES
            raise LlmError(
                f"the generator answered {response.status_code}: {response.text[:200]}",
                permanent=permanent,
                status=response.status_code,
            )
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
            if not isinstance(text, str) or not text.strip():
                raise ValueError("empty content")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LlmError(f"the generator's answer is not a chat completion ({exc})", permanent=True) from None
        usage = data.get("usage") or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        total = int(usage.get("total_tokens") or prompt + completion)
        return Completion(text, str(data.get("model") or self.model), prompt, completion, total)

    async def aclose(self) -> None:
        await self._http.aclose()
