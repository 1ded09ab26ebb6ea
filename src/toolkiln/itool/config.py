"""Typed params of iTool's iterative reinforced fine-tuning (iTool arXiv 2501.09766 §3.2-3.3; docs/architecture.md#rounds).

One section of ``params.yaml``, ``itool``, with four parts, one per step of a round:

* ``deficiency`` — which training prompts the current policy is weak on;
* ``mcts`` — the step-level search over call fragments that turns them into pairs;
* ``pairs`` — which sibling pairs are kept;
* ``preference`` — the SimPO / DPO update (LoRA, merged per round).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from toolkiln.configbase import Section


class DeficiencyConfig(Section):
    """iTool §3.2: deficient samples = high target perplexity (per group) and/or failed samples."""

    mode: Literal["perplexity", "verifiable", "both"] = Field(
        "perplexity",
        description="perplexity: iTool's rule, the top `ratio` of target perplexity under the current "
        "policy within each group (tool-call targets, text targets); verifiable: sample `n_samples` outputs per "
        "prompt and keep prompts with a failed output (BFCL AST check); both: the union, with both reasons.",
    )
    ratio: float = Field(0.3, gt=0, le=1, description="Share of each group kept by the perplexity rule.")
    n_samples: int = Field(4, ge=1, description="Outputs sampled per prompt by the verifiable rule.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the verifiable rule.")
    max_new_tokens: int = Field(96, ge=1, description="Generation budget per sampled output (verifiable rule).")
    max_scored: int = Field(
        600,
        ge=0,
        description="Training dialogs scored (a seeded, type-stratified subset; "
        "0 = all): scoring costs one forward pass per dialog (perplexity) or n_samples "
        "generations (verifiable).",
    )
    max_prompts: int = Field(
        24,
        ge=1,
        description="Budget: at most this many deficient prompts go to the search "
        "(the most deficient first, each group keeping its share). Sizes a round's time.",
    )
    batch_size: int = Field(8, ge=1, description="Samples per scoring forward pass.")


class MCTSConfig(Section):
    """iTool §3.2 step-wise MCTS: fragments split at ``(``, ``, ``, ``=``, ``. ``; PUCT with the policy prior."""

    c: float = Field(1.0, ge=0, description="Exploration constant of the PUCT rule Q + c * P * sqrt(N) / (1 + n).")
    width: int = Field(3, ge=2, description="Sibling continuations sampled per expansion (one batched generate).")
    depth: int = Field(3, ge=1, description="Depth limit of the tree (fragments below the root).")
    iterations: int = Field(5, ge=1, description="Select-expand-rollout-backup iterations per prompt.")
    temperature: float = Field(1.5, gt=0, description="Sampling temperature of expansions and rollouts.")
    top_k: int = Field(
        50,
        ge=0,
        description="Sample among the top-k tokens (0 = the whole vocabulary); at "
        "temperature 1.5 the long tail of a 49k vocabulary is otherwise mostly noise.",
    )
    max_new_tokens: int = Field(96, ge=1, description="Token budget of one rollout to the end of the call list.")
    min_fragment_chars: int = Field(
        2,
        ge=1,
        description="A fragment ends at the first delimiter after this many "
        "characters (so a lone '(' or '=' is never a step of its own).",
    )
    lockstep: int = Field(
        8,
        ge=1,
        description="Prompts searched together: their trees take each iteration in step and every tree's "
        "expansion goes into one batch (1 = one prompt at a time). A CPU decodes 24 rows for ~1.6x the "
        "price of 3, so this sets the search's cost per rollout; the draws, not the rules, change.",
    )
    root_openings: int = Field(
        0,
        ge=0,
        description="Tool-choice expansion: the root also gets the call openings ('[', the comment line, "
        "'name(') of this many offered tools, those the policy ranks highest, each with one rollout, so "
        "right and wrong tool choices become siblings with values (0 = off: the root's children are sampled only).",
    )


class PairsConfig(Section):
    """Which sibling pairs of the tree become preference pairs (iTool's filters)."""

    min_gap: float = Field(0.1, ge=0, le=2, description="Keep a pair when value(chosen) - value(rejected) >= this.")
    max_overlap: float = Field(
        0.95,
        ge=0,
        le=1,
        description="... and the two fragments' text similarity "
        "(difflib ratio) <= this (near-identical siblings teach nothing).",
    )
    min_chosen: float = Field(-0.3, ge=-1, le=1, description="... and value(chosen) >= this (rewards in [-1, 1]).")
    min_visits: int = Field(1, ge=1, description="Both siblings visited at least this often.")
    min_pairs: int = Field(
        1,
        ge=0,
        description="mcts_pairs fails when the search keeps fewer pairs than this. 0 lets an empty round through: "
        "preference_opt then carries the input policy over unchanged and records updated: false (the smoke "
        "profile, whose 4-step warm-up cannot write a right call, so every sibling scores the same).",
    )


class PreferenceConfig(Section):
    """The round's update: TRL's CPOTrainer with SimPO's loss, or DPOTrainer, through LoRA merged after training."""

    algorithm: Literal["simpo", "dpo"] = Field(
        "simpo",
        description="simpo: CPOTrainer(loss_type='simpo', "
        "cpo_alpha=0), reference-free; dpo: DPOTrainer against the frozen "
        "policy (the LoRA adapter switched off).",
    )
    completion: Literal["fragment", "rollout"] = Field(
        "rollout",
        description="rollout: each sibling fragment followed by its best rollout to the end of the answer "
        "(the pair still differs from the step on; a whole answer, so the end-of-turn token TRL appends to every "
        "completion is right); fragment: the two sibling fragments alone (iTool's step-level pairs; TRL then appends "
        "end-of-turn after a half-written call, to both sides).",
    )
    beta: float = Field(2.5, gt=0, description="Reward scale (SimPO beta; iTool 2.5). For DPO 0.1 is usual.")
    gamma: float = Field(0.5, ge=0, description="SimPO target margin gamma / beta ratio (TRL simpo_gamma; iTool 0.5).")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate (cosine).")
    epochs: int = Field(1, ge=1, le=20, description="Passes over the round's pairs.")
    batch_size: int = Field(4, ge=1, description="Pairs per device batch.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    max_steps: int = Field(0, ge=0, description="Stop after this many optimizer steps (0 = the whole schedule).")
    max_length: int = Field(
        1024,
        ge=32,
        description="Longest prompt + completion in tokens (longer pairs are cut from the prompt's start by TRL).",
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] = Field(["q_proj", "k_proj", "v_proj", "o_proj"], description="Modules with adapters.")
    logging_steps: int = Field(5, ge=1, description="Loss and reward margins logged every this many steps.")
    sft_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of an NLL term on the chosen completion added to the preference loss (0 = off, "
        "iTool's SimPO). simpo: CPOTrainer's cpo_alpha (CPO's behaviour-cloning term); dpo: DPOTrainer's "
        "loss_type ['sigmoid', 'sft'] with loss_weights [1, sft_weight]. Keeps the call format while the "
        "margin moves.",
    )
    max_text_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="At most this share of the pairs trained on may prefer a text reply (a chosen rollout with no "
        "call in it: abstain, ask); the rest are dropped, smallest value gap first (1 = train on every pair). "
        "Clarification prompts make most pairs, and a round made of them teaches 'answer in text'.",
    )


class IToolConfig(Section):
    """iTool's iterative reinforced fine-tuning: deficiencies -> MCTS pairs -> preference update, per round.

    The rounds themselves are ``foreach`` stage groups in ``dvc.yaml`` over ``rounds.chain``
    (:class:`RoundsConfig`), each reading the previous round's checkpoint; every round uses this section,
    seeded by its round number.
    """

    deficiency: DeficiencyConfig = DeficiencyConfig()
    mcts: MCTSConfig = MCTSConfig()
    pairs: PairsConfig = PairsConfig()
    preference: PreferenceConfig = PreferenceConfig()


def round_chain(count: int) -> dict[str, str]:
    """The ``rounds.chain`` of ``count`` rounds: round k (a quoted key) -> the checkpoint it starts from."""
    return {str(k): "checkpoints/warmup" if k == 1 else f"checkpoints/round_{k - 1}" for k in range(1, count + 1)}


class RoundsConfig(Section):
    """How many preference rounds follow the warm-up (iTool §3.3: the loop is iterated), as DVC stages.

    ``dvc.yaml`` runs the four round stages (``find_deficiencies_round``, ``mcts_pairs_round``,
    ``preference_opt_round``, ``eval_round``) once per ``chain`` entry with DVC's ``foreach`` — stage
    ``mcts_pairs_round@2`` reads ``chain["2"]`` = ``checkpoints/round_1`` — and the report stage depends on
    round ``count``'s evaluation. DVC cannot count, so the chain is written out; it must be exactly the one
    ``count`` implies (the error says what to write). Adding a round leaves the earlier rounds' stages
    cached: their commands, deps and outputs do not change.
    """

    count: int = Field(1, ge=1, description="K: preference rounds after the warm-up, each followed by its evaluation.")
    chain: dict[str, str] = Field(
        default_factory=lambda: round_chain(1),
        description="Round number (a quoted string: DVC's foreach silently drops integer keys) -> the checkpoint "
        "the round starts from: round 1 the warm-up, round k round k-1's output. Exactly `count` entries.",
    )

    @field_validator("chain", mode="before")
    @classmethod
    def _quoted_keys(cls, v):
        if isinstance(v, dict) and any(not isinstance(k, str) for k in v):
            raise ValueError('quoted round numbers as keys ("1": ...): DVC\'s foreach silently skips integer keys')
        return v

    @model_validator(mode="after")
    def _chain_matches_count(self) -> RoundsConfig:
        want = round_chain(self.count)
        if self.chain != want:
            raise ValueError(
                f"rounds.chain {self.chain!r} does not match rounds.count={self.count}; expected "
                f"{want!r}: round 1 starts from the warm-up, round k from round k-1's checkpoint"
            )
        return self
