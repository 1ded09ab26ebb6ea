"""Chat backends for the LLM-prompted agents (docs/architecture.md#backends).

``make_backend(params.llm)`` returns the configured :class:`ChatBackend`, or None
when ``llm.backend`` is ``"simulator"`` (the agents' programmatic default). The
HTTP and transformers implementations are imported lazily so that importing
configs stays cheap (``toolkiln.config`` imports ``toolkiln.llm.config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from toolkiln.llm.base import ChatBackend, ChatRequest, ChatResult
from toolkiln.llm.parse import extract_json

if TYPE_CHECKING:
    from toolkiln.llm.config import LLMConfig, LLMRuntime

__all__ = ["ChatBackend", "ChatRequest", "ChatResult", "EndpointOutage", "check_outage", "extract_json", "make_backend"]


class EndpointOutage(SystemExit):
    """A stage's LLM requests failed above ``runtime.llm.max_failure_rate``: the stage exits non-zero (code 3),
    so DVC never caches an outage's rejections as a result."""

    def __init__(self, message: str) -> None:
        super().__init__(3)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_outage(backend: "ChatBackend | None", max_failure_rate: float, stage: str) -> dict:
    """Request counts of ``backend`` (ok, cached, failed, circuit_open); raises :class:`EndpointOutage`
    when failed + short-circuited requests exceed ``max_failure_rate`` of all requests."""
    stats = dict(getattr(backend, "stats", None) or {})
    bad = stats.get("failed", 0) + stats.get("circuit_open", 0)
    total = bad + stats.get("ok", 0) + stats.get("cached", 0)
    stats["failure_rate"] = bad / total if total else 0.0
    if total and stats["failure_rate"] > max_failure_rate:
        import logging

        msg = (f"{stage}: {bad} of {total} LLM requests failed ({stats['failure_rate']:.1%} > "
               f"runtime.llm.max_failure_rate {max_failure_rate:.1%}; {stats.get('circuit_open', 0)} short-circuited "
               f"by the circuit breaker): the endpoint is down or overloaded. Outputs are not registered; fix the "
               f"endpoint and rerun (answered requests are cached and not asked again)")
        logging.getLogger(f"toolkiln.stage.{stage}").error("%s", msg)
        raise EndpointOutage(msg)
    return stats


def make_backend(llm_cfg: "LLMConfig", runtime: "LLMRuntime | None" = None, *, trace_path: str | Path | None = None,
                 trace_append: bool = False) -> ChatBackend | None:
    """The backend ``llm_cfg`` describes, or None for the programmatic simulator.

    ``runtime`` (``params.runtime.llm``; defaults if None) says how requests are sent: concurrency,
    timeouts, retries, the circuit breaker and the response cache — nothing that changes an answer.

    ``trace_path`` (JSONL, one row per request: key, tag, request, response or error,
    attempts, latency, cached) keeps the raw traffic next to a stage's outputs; it is
    started afresh unless ``trace_append``.
    """
    if llm_cfg.backend == "simulator":
        return None
    if runtime is None:
        from toolkiln.llm.config import LLMRuntime

        runtime = LLMRuntime()
    if llm_cfg.backend == "openai":
        from toolkiln.llm.http import OpenAIBackend

        return OpenAIBackend(
            base_url=llm_cfg.base_url, model=llm_cfg.model, api_key_env=llm_cfg.api_key_env,
            concurrency=runtime.concurrency, timeout_s=runtime.timeout_s, max_retries=runtime.max_retries,
            backoff_s=runtime.backoff_s, max_backoff_s=runtime.max_backoff_s, breaker_failures=runtime.breaker_failures,
            breaker_cooldown_s=runtime.breaker_cooldown_s,
            cache_dir=runtime.cache_dir or None, trace_path=trace_path, trace_append=trace_append,
        )
    if llm_cfg.backend == "transformers":
        from toolkiln.llm.local import TransformersBackend

        return TransformersBackend(
            model_path=llm_cfg.model, device=llm_cfg.device, batch_size=llm_cfg.batch_size,
            max_new_tokens=llm_cfg.max_tokens, cache_dir=runtime.cache_dir or None,
            trace_path=trace_path, trace_append=trace_append,
        )
    raise ValueError(f"llm.backend: got {llm_cfg.backend!r}; expected 'simulator', 'openai' or 'transformers'")
