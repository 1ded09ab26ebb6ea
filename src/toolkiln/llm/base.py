"""The chat-backend interface every LLM-prompted agent uses (docs/architecture.md#backends).

A backend takes a batch of :class:`ChatRequest` and returns one
:class:`ChatResult` per request, in order. It never raises for a failed request:
a failure is a result with ``ok=False`` and a reason, so a stage records it as a
rejection instead of crashing. Concurrency, retries and caching are the
backend's business; agents only build requests and parse texts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence


RESPONSE_FORMATS = (None, "json_object", "json_schema")


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[dict, ...]  # OpenAI chat messages: {"role": ..., "content": ...}
    model: str = ""
    temperature: float = 0.0
    max_tokens: int | None = None
    n: int = 1
    seed: int | None = None
    tag: str = ""  # free-form label (agent name, sample id) kept for tracing; not part of the cache key
    # "json_object": the reply must be one JSON object (OpenAI's JSON mode, sent as
    # ``response_format: {"type": "json_object"}``); a local backend starts the reply with "{" and stops at
    # the brace that closes it. "json_schema": one object matching ``schema`` (OpenAI's structured outputs);
    # a local backend also writes the first required key for the model. None: free text.
    response_format: str | None = None
    schema: dict | None = None

    def __post_init__(self) -> None:
        if self.response_format not in RESPONSE_FORMATS:
            raise ValueError(
                f"ChatRequest.response_format: got {self.response_format!r}; expected one of {RESPONSE_FORMATS}"
            )
        if (self.response_format == "json_schema") != isinstance(self.schema, dict):
            raise ValueError(
                "ChatRequest.schema: a JSON Schema dict goes with response_format='json_schema' and only with it; "
                f"got response_format={self.response_format!r}, schema of type {type(self.schema).__name__}"
            )

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to a chat-completions endpoint."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(self.messages),
            "temperature": self.temperature,
            "n": self.n,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        if self.response_format == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": self.schema}}
        elif self.response_format is not None:
            body["response_format"] = {"type": self.response_format}
        return body

    def key(self) -> str:
        """Stable cache key: a hash of the request body (not the tag)."""
        blob = json.dumps(self.payload(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class ChatResult:
    key: str
    ok: bool
    texts: list[str] = field(default_factory=list)  # one per choice (n)
    error: str | None = None  # reason when ok is False
    attempts: int = 0
    cached: bool = False
    latency_s: float = 0.0
    usage: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class ChatBackend(Protocol):
    def chat_many(self, requests: Sequence[ChatRequest], *, desc: str | None = None) -> list[ChatResult]:
        """Answer every request (order preserved); failures are results, never exceptions."""
        ...
