"""Typed params for chat backends (docs/architecture.md#backends)."""

from typing import Literal

from pydantic import Field

from toolkiln.configbase import Section


class LLMConfig(Section):
    """What the agents' LLM is: every field can change what a stage produces (stages list ``llm``).

    How requests are sent (concurrency, timeouts, retries, the response cache) is
    :class:`LLMRuntime`, under ``runtime.llm``: it changes speed and resilience, never an answer.
    """

    backend: Literal["simulator", "openai", "transformers"] = Field(
        "simulator",
        description="Which implementation every agent uses: the embedded programmatic simulator "
        "(default, offline), an OpenAI-compatible HTTP endpoint, or a local transformers model.",
    )
    base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible endpoint (…/v1).")
    model: str = Field("gpt-4o-mini", description="Model name sent to the endpoint, or a local HF folder for 'transformers'.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Name of the environment variable holding the API key (never the key itself).")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature for generation agents.")
    max_tokens: int = Field(1024, ge=1, description="Completion token limit per request.")
    device: str = Field("cpu", description="Torch device for the 'transformers' backend (cpu, cuda, cuda:1, mps).")
    batch_size: int = Field(8, ge=1, le=4096, description="Prompts generated together by the 'transformers' backend.")


class LLMRuntime(Section):
    """``runtime.llm``: how requests reach the endpoint. No stage lists it, so changing it reruns nothing."""

    concurrency: int = Field(8, ge=1, le=1024, description="Maximum requests in flight.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(5, ge=0, le=50, description="Retries on timeouts, 429 and 5xx.")
    backoff_s: float = Field(1.0, ge=0, description="Initial backoff; doubles each retry, with jitter.")
    max_backoff_s: float = Field(30.0, ge=0, description="Cap on one backoff sleep.")
    cache_dir: str = Field("cache/llm", description="On-disk response cache (keyed by request) so reruns resume; '' disables it.")
    breaker_failures: int = Field(
        10, ge=0, le=100000,
        description="Consecutive failed requests (after their retries) that open the circuit breaker: every request "
        "still queued fails at once with reason 'circuit_open' instead of being retried; 0 disables it.")
    breaker_cooldown_s: float = Field(30.0, ge=0, description="Seconds an open circuit waits before one probe request.")
    max_failure_rate: float = Field(
        0.05, ge=0, le=1,
        description="Share of a stage's LLM requests that may fail (after retries, or short-circuited) before the stage "
        "exits non-zero instead of recording the failures as rejections.")
