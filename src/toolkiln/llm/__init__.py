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
    from toolkiln.llm.config import LLMConfig

__all__ = ["ChatBackend", "ChatRequest", "ChatResult", "extract_json", "make_backend"]


def make_backend(llm_cfg: "LLMConfig", *, trace_path: str | Path | None = None,
                 trace_append: bool = False) -> ChatBackend | None:
    """The backend ``llm_cfg`` describes, or None for the programmatic simulator.

    ``trace_path`` (JSONL, one row per request: key, tag, request, response or error,
    attempts, latency, cached) keeps the raw traffic next to a stage's outputs; it is
    started afresh unless ``trace_append``.
    """
    if llm_cfg.backend == "simulator":
        return None
    if llm_cfg.backend == "openai":
        from toolkiln.llm.http import OpenAIBackend

        return OpenAIBackend(
            base_url=llm_cfg.base_url, model=llm_cfg.model, api_key_env=llm_cfg.api_key_env,
            concurrency=llm_cfg.concurrency, timeout_s=llm_cfg.timeout_s, max_retries=llm_cfg.max_retries,
            backoff_s=llm_cfg.backoff_s, max_backoff_s=llm_cfg.max_backoff_s,
            cache_dir=llm_cfg.cache_dir or None, trace_path=trace_path, trace_append=trace_append,
        )
    if llm_cfg.backend == "transformers":
        from toolkiln.llm.local import TransformersBackend

        return TransformersBackend(
            model_path=llm_cfg.model, device=llm_cfg.device, batch_size=llm_cfg.batch_size,
            max_new_tokens=llm_cfg.max_tokens, cache_dir=llm_cfg.cache_dir or None,
            trace_path=trace_path, trace_append=trace_append,
        )
    raise ValueError(f"llm.backend: got {llm_cfg.backend!r}; expected 'simulator', 'openai' or 'transformers'")
