"""Typed params for evaluation (README "Evaluation"; docs/architecture.md#evaluation): the ``evaluate:`` section of ``params.yaml``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from toolkiln.configbase import Section

# Kept here (not imported from evaluate.bfcl) so that loading params stays import-light.
BFCL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
                   "live_parallel", "live_parallel_multiple", "irrelevance", "live_irrelevance", "live_relevance")


def decoding_conflict(prompt_lookup: int, constrain_names: bool, call_bias: float) -> str | None:
    """Why these generator options cannot run together, or None: prompt-lookup decoding verifies several tokens
    per forward pass, while the name constraint and the call bias are logits processors of the token-by-token
    path. Checked by the config and by ``HFGenerator`` (which benches build directly)."""
    if prompt_lookup and constrain_names:
        return ("prompt_lookup > 0 cannot be combined with constrain_names (the name constraint works one token at "
                "a time); set one of them off")
    if prompt_lookup and call_bias:
        return ("prompt_lookup > 0 cannot be combined with call_bias (the bias works one token at a time); set one "
                "of them off")
    return None


class EvaluateConfig(Section):
    """How a checkpoint is evaluated on the synthetic test split and on BFCL."""

    batch_size: int = Field(8, ge=1, description="Prompts per greedy generate() call (left-padded, length-sorted).")
    max_new_tokens: int = Field(128, ge=1, description="Generation budget per prompt; a call list longer than this "
                                "is cut off and usually unparsable.")
    max_prompt_tokens: int = Field(0, ge=0, description="Prompts longer than this are not generated (recorded as "
                                   "not_generated). 0 = the model's context minus max_new_tokens.")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="torch device for generation.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype at generation.")
    constrain_names: bool = Field(False, description="Grammar-constrained function names: inside a call list a "
                                  "name can only be one of the prompt's tools (harness.ToolNameConstraint); "
                                  "arguments and whether to call stay the model's.")
    prompt_lookup: int = Field(0, ge=0, le=64, description="Greedy decoding with prompt-lookup drafts: each "
                               "forward pass checks up to this many tokens copied from the row's prompt and output "
                               "(after the latest earlier occurrence of its last 1-3 tokens) and keeps those greedy "
                               "decoding agrees with. Same outputs up to float rounding, fewer passes. 0 = off; not "
                               "with constrain_names.")
    rank_tools: bool = Field(False, description="Tool choice by likelihood: when the greedy answer is a call list "
                             "and the prompt offers two or more tools, the first call's tool is the one whose whole "
                             "call opening (comment line, name) the model finds likeliest; a row whose greedy "
                             "opening loses is written again from the winner. Whether to call and the arguments stay "
                             "greedy decoding's.")
    call_bias: float = Field(0.0, ge=-20, le=20, description="Logit bias on the tokens that open a call list "
                             "('['), at the first generated position only: > 0 shifts the call-or-text decision "
                             "toward calling, < 0 toward a text reply; everything after it stays greedy. 0 = off; "
                             "not with prompt_lookup.")
    max_samples: int = Field(0, ge=0, description="Evaluate at most this many synthetic test dialogs (0 = all).")
    samples_per_type: int = Field(0, ge=0, description="A seeded sample of this many test dialogs per dialog type "
                                  "(0 = every dialog); applied before max_samples.")
    targets: Literal["unseen", "all"] = Field(
        "unseen", description="unseen: only test dialogs whose target turn calls test APIs alone (or no API; the "
        "split's provenance.split_target), so the score measures unseen tools; all: every test dialog, with accuracy "
        "also reported per split_target group.")
    strict_parse: bool = Field(False, description="Synthetic split: true = the output must be the call list itself "
                               "(BFCL's decoding rules); false = also find calls in code fences, tags, prose and "
                               "JSON tool-call formats.")
    bfcl_categories: list[str] = Field(
        ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"],
        description="BFCL v4 categories (from the bfcl-eval package) to evaluate on; [] = none.")
    bfcl_limit: int = Field(20, ge=0, description="Items per BFCL category, a seeded sample (0 = the whole category).")
    bfcl_strict_parse: bool = Field(True, description="BFCL categories: parse with BFCL's decoding rules (true) so "
                                    "scores are comparable with the leaderboard, or tolerantly (false).")

    @field_validator("bfcl_categories")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in BFCL_CATEGORIES]
        if bad:
            raise ValueError(f"got unknown BFCL categories {bad}; expected a subset of {list(BFCL_CATEGORIES)} "
                             "(single-turn Python AST and relevance categories)")
        if len(set(v)) != len(v):
            raise ValueError(f"got duplicate categories in {v}; expected each at most once")
        return v

    @model_validator(mode="after")
    def _decoding_options(self) -> "EvaluateConfig":
        why = decoding_conflict(self.prompt_lookup, self.constrain_names, self.call_bias)
        if why:
            raise ValueError(f"got prompt_lookup {self.prompt_lookup}, constrain_names {self.constrain_names}, "
                             f"call_bias {self.call_bias}: {why}")
        return self
