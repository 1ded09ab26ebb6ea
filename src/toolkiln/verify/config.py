"""Typed params for verification (docs/architecture.md#verification)."""

from typing import Literal

from pydantic import Field, model_validator

from toolkiln.configbase import Section


class RuleConfig(Section):
    """Thresholds of ToolACE's rule layer (§3.3) that are not plain schema checks."""

    max_response_chars: int = Field(
        4000, ge=1, description="A user/assistant turn longer than this is a runaway response."
    )
    runaway_min_tokens: int = Field(
        60, ge=2, description="Turns with at least this many whitespace tokens are tested for runaway repetition."
    )
    runaway_distinct_ratio: float = Field(
        0.2, gt=0, le=1, description="Distinct/total token ratio below which a long turn is a runaway repetition."
    )
    runaway_repeats: int = Field(
        5, ge=2, description="A sentence said this many times in one turn is a runaway (a generation stuck in a loop)."
    )
    mixed_language_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of a turn's letters in its second script "
        "(Latin, CJK, Cyrillic, ...) at which the turn counts as mixed-language.",
    )
    mixed_language_min_letters: int = Field(
        4,
        ge=1,
        description="Minimum letters of the second script before a turn "
        "can count as mixed-language by share (quoted text is never counted).",
    )
    mixed_language_letters: int = Field(
        8,
        ge=1,
        description="This many letters of a second script (outside quotes) "
        "make a turn mixed-language whatever their share: a sentence in another "
        "language appended to a long answer.",
    )


class ModelLayerConfig(Section):
    """ToolACE's model layer (§3.3): hallucination, consistency and tool-response checks."""

    enabled: bool = Field(True, description="Run the model layer after the rule layer (on rule-layer survivors only).")
    judge: Literal["auto", "embedded", "llm"] = Field(
        "auto",
        description="embedded: offline value grounding + request/API similarity (see encoder) + returns-schema check; "
        "llm: one LLM-judge prompt per sub-question via params.llm; auto: llm unless llm.backend is 'simulator'.",
    )
    intent_margin: float = Field(
        0.15,
        ge=0,
        le=2,
        description="Embedded consistency check: a called API passes if its "
        "cosine similarity to the request (argument values removed) is within this margin of "
        "the k-th best candidate (k = distinct APIs the request's calls use). Calibrated on "
        "simulator dialogs: 0.05 -> 2% clean rejected / 96% wrong-intent caught, 0.15 -> "
        "0.3% / 86%.",
    )
    encoder: Literal["minilm", "static"] = Field(
        "minilm",
        description="Embedded judge's text encoder for the intent ranking: minilm (the transformer, one pass per "
        "text) or static (a word-piece table distilled from it by the distill_encoder stage: ~50x faster to "
        "encode; bench/verify_encoders.py compares their verdicts at each intent_margin).",
    )
    batch_size: int = Field(128, ge=1, description="Sentences per MiniLM batch.")
    embed_dtype: Literal["float32", "bfloat16", "int8"] = Field(
        "float32",
        description="Precision of the embedded judge's MiniLM encoder: bfloat16 is ~3x faster on CPUs "
        "with AMX, int8 (dynamic quantisation) the fastest without AMX; both change verdicts only at near-ties "
        "(bench/embed_speed.py measures speed and agreement on the machine at hand).",
    )
    unparsable: Literal["reject", "keep"] = Field(
        "reject",
        description="What a 'judge_unparsable' outcome of the LLM judge does to the row; it is recorded either way.",
    )


class GXConfig(Section):
    """Batch-level thresholds the GX suites assert (``mostly`` = minimum share of passing rows)."""

    mostly_rules: float = Field(
        0.9, ge=0, le=1, description="mostly for every ok_<check> of expectations/dialogs_rules.json."
    )
    mostly_model: float = Field(
        0.8, ge=0, le=1, description="mostly for every ok_model_<check> of expectations/dialogs_model.json."
    )
    fail_on_suite_failure: bool = Field(
        False,
        description="Stop the stage (exit 1) when a suite fails, after writing "
        "the report; otherwise the failure is only reported.",
    )


class InjectionConfig(Section):
    """Error injection (docs/architecture.md#verification): labelled corruptions measure recall per kind, not assume it."""

    enabled: bool = Field(True, description="Evaluate the verifier on corrupted copies of the input dialogs.")
    per_kind: int = Field(200, ge=1, description="Corrupted dialogs per error kind (fewer when fewer dialogs qualify).")
    clean_sample: int = Field(5000, ge=1, description="Clean dialogs the evaluation draws from (caps its cost).")


class VerifyConfig(Section):
    """ToolACE's dual-layer verification."""

    enabled: bool = Field(
        True,
        description="false = the 'unverified data' ablation: every row passes through; "
        "the checks are still computed and reported.",
    )
    rules: RuleConfig = RuleConfig()
    model: ModelLayerConfig = ModelLayerConfig()
    gx: GXConfig = GXConfig()
    injection: InjectionConfig = InjectionConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.rules.runaway_min_tokens * self.rules.runaway_distinct_ratio < 1:
            raise ValueError(
                f"rules.runaway_min_tokens * rules.runaway_distinct_ratio: got "
                f"{self.rules.runaway_min_tokens} * {self.rules.runaway_distinct_ratio}; expected >= 1 "
                "(otherwise every long turn counts as a runaway)"
            )
        return self
