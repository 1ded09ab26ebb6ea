"""Typed params for dialog generation (ToolACE arXiv 2409.00920 §3.2) and the train/test split by API."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from toolkiln.configbase import Section
from toolkiln.schema import DIALOG_TYPES


def _range_pair(name: str, v: list[int], lo: int) -> list[int]:
    if len(v) != 2 or v[0] < lo or v[1] < v[0]:
        raise ValueError(f"{name}: got {v}; expected [min, max] with {lo} <= min <= max")
    return v


class NoiseConfig(Section):
    """The simulator assistant's per-sample error model, so consistency voting has something to reject."""

    distractor: float = Field(0.04, ge=0, le=1, description="Chance a sample calls a distractor instead of a gold API "
                              "(or calls a tool where it should ask or refuse).")
    drop_optional: float = Field(0.05, ge=0, le=1, description="Chance a sample drops one optional argument the user gave.")
    perturb_value: float = Field(0.03, ge=0, le=1, description="Chance a sample changes one argument value.")


class VotingConfig(Section):
    """ToolACE's consistency check: the assistant's action is sampled ``n`` times and kept only when they agree."""

    n: int = Field(3, ge=1, le=16, description="Samples of each assistant decision (tool calls, question or refusal).")
    min_agreement: float = Field(0.66, gt=0, le=1, description="Share of the n samples that must equal the most common "
                                 "action for the turn to be kept (1.0 = unanimous); otherwise the dialog is a rejection.")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature of the LLM assistant's voted samples.")
    noise: NoiseConfig = NoiseConfig()


class ComplexityConfig(Section):
    """ToolACE's complexity guidance: steer samples into a band of the policy's target NLL (eq. 1)."""

    enabled: bool = Field(False, description="Score generated dialogs and regenerate those outside the band (needs a scorer).")
    scorer: str = Field("none", description="'none' (no guidance) or 'structural' (a built-in proxy: candidates, calls, "
                        "turns and arguments); the policy's target NLL is plugged in through the Python hook.")
    band: list[float] = Field([], description="[low, high] score band; empty = calibrate it on a prior set.")
    calibrate_quantiles: list[float] = Field([0.2, 0.8], description="Quantiles of the prior set's scores that make the band.")
    prior_size: int = Field(256, ge=8, description="Dialogs scored to calibrate the band (the first ones generated).")
    max_rounds: int = Field(2, ge=0, le=10, description="Regeneration rounds for out-of-band dialogs.")
    step: int = Field(1, ge=1, le=3, description="Complexity levels moved per regeneration.")

    @field_validator("scorer")
    @classmethod
    def _scorer(cls, v: str) -> str:
        if v not in ("none", "structural"):
            raise ValueError(f"got {v!r}; expected 'none' or 'structural'")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.band and (len(self.band) != 2 or self.band[0] >= self.band[1]):
            raise ValueError(f"complexity.band: got {self.band}; expected [] or [low, high] with low < high")
        q = self.calibrate_quantiles
        if len(q) != 2 or not 0 <= q[0] < q[1] <= 1:
            raise ValueError(f"complexity.calibrate_quantiles: got {q}; expected [q_low, q_high] with 0 <= q_low < q_high <= 1")
        if self.enabled and self.scorer == "none":
            raise ValueError("complexity.enabled is true but complexity.scorer is 'none'; pick 'structural' or disable it")
        return self


class DialogsConfig(Section):
    """ToolACE's self-guided multi-agent dialog generation."""

    n_dialogs: int = Field(24000, ge=1, description="Dialogs to keep (rejected attempts are retried with a new seed, "
                           "same type, up to max_attempts_factor * n_dialogs attempts).")
    max_attempts_factor: float = Field(1.5, ge=1.0, le=10.0, description="Bound on attempts per kept dialog.")
    shards: int = Field(8, ge=1, le=4096, description="Contiguous slot ranges generated independently, each with "
                        "its own attempt budget (its share of max_attempts_factor x n_dialogs), merged in order; runtime.executor "
                        "says where they run, this says what they produce.")
    type_mix: dict[str, float] = Field(
        {"single": 0.3, "parallel": 0.2, "dependent": 0.15, "non_tool": 0.15, "clarification": 0.2},
        description="Share of each dialog type (normalised); types: " + ", ".join(DIALOG_TYPES) + ".")
    distractors: list[int] = Field([2, 5], description="[min, max] same-domain distractor APIs per candidate list.")
    same_category: float = Field(0.5, ge=0, le=1, description="Share of distractors drawn from the gold API's own "
                                 "category (harder to tell apart) rather than the rest of its domain.")
    history_same_category: float = Field(0.3, ge=0, le=1, description="Share of the APIs of earlier, completed "
                                         "exchanges (multi-turn history) drawn from the gold API's own category.")
    parallel_calls: list[int] = Field([2, 3], description="[min, max] calls in a parallel turn.")
    parallel_same_api: float = Field(0.5, ge=0, le=1, description="Share of parallel turns that call one API several "
                                     "times (BFCL 'parallel') rather than different APIs ('parallel_multiple').")
    multi_turn: float = Field(0.3, ge=0, le=1, description="Chance a dialog opens with earlier completed exchanges.")
    max_history: int = Field(2, ge=0, le=5, description="Most earlier exchanges before the target exchange.")
    follow_up: float = Field(0.5, ge=0, le=1, description="Chance a multi-turn single-call dialog ends with a follow-up "
                             "('what about X?') that reuses the previous call's other arguments.")
    optional_args: float = Field(0.35, ge=0, le=1, description="Chance each optional parameter is given by the user.")
    profile_in_system: float = Field(0.15, ge=0, le=1, description="Chance one value is a user-profile fact stated in "
                                     "the system prompt that the user refers to ('my email').")
    date_as_text: float = Field(0.6, ge=0, le=1, description="Chance a date is said as text ('May 3rd, 2024') rather than ISO.")
    number_words: float = Field(0.3, ge=0, le=1, description="Chance a small integer is said in words ('three').")
    levels: list[float] = Field([0.25, 0.4, 0.25, 0.1, 0.0], description="Sampling weights of complexity levels 0..4 "
                                "(distractors, optional args, paraphrase distance, calls, history grow with the level).")
    batch_size: int = Field(512, ge=1, description="Dialogs in flight at once (the LLM agents' requests of one step go "
                            "to the backend as one concurrent batch).")
    voting: VotingConfig = VotingConfig()
    complexity: ComplexityConfig = ComplexityConfig()

    @field_validator("type_mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if k not in DIALOG_TYPES]
        if bad:
            raise ValueError(f"unknown dialog types {bad}; expected keys among {list(DIALOG_TYPES)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"got {v}; expected non-negative shares with a positive sum")
        return v

    @field_validator("distractors")
    @classmethod
    def _distractors(cls, v: list[int]) -> list[int]:
        return _range_pair("distractors", v, 0)

    @field_validator("parallel_calls")
    @classmethod
    def _parallel(cls, v: list[int]) -> list[int]:
        return _range_pair("parallel_calls", v, 2)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if len(v) != 5 or any(w < 0 for w in v) or sum(v) <= 0:
            raise ValueError(f"got {v}; expected 5 non-negative weights (levels 0..4) with a positive sum")
        return v


class SplitConfig(Section):
    """Train/test split by API (docs/architecture.md#dialogs), so the test set measures unseen tools."""

    test_fraction: float = Field(0.1, gt=0, lt=1, description="Target share of dialogs in the test split; test APIs are "
                                 "added until their dialogs reach it.")
    all_types_in_test: bool = Field(True, description="Add test APIs until every dialog type present in the input "
                                    "also appears in the test split.")
    strip_test_distractors: bool = Field(True, description="Remove test APIs from the candidate lists of train dialogs, "
                                         "so no test API appears in train at all (not even as a distractor).")
    exports: list[Literal["sharegpt", "openai", "bfcl"]] = Field(
        ["sharegpt", "openai", "bfcl"], description="Export formats written for each split: ShareGPT/ToolACE JSON, "
        "OpenAI-messages JSONL, BFCL question + possible-answer JSONL.")
