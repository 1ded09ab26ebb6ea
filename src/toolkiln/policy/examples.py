"""Dialog rows -> chat examples within a token budget, and the per-sample target NLL (iTool arXiv 2501.09766 §3.1).

An example is the system turn (system prompt + candidate tools) and the dialog's turns
up to and including the target turn (``context="target"``) or the whole dialog
(``"full"``). When the rendered example exceeds ``render.max_length`` tokens,
distractor tools are dropped last-first (the gold APIs never are); an example that
still does not fit is skipped. Both are counted, never silent.

:func:`target_nll` is the iTool/ToolACE complexity signal: the mean token negative
log-likelihood of the ground-truth target turn (its end marker included) given the
prompt, under a model.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from toolkiln.policy.config import RenderConfig
from toolkiln.policy.render import CallStyle, DialogFormatError, dialog_messages, fit_tools, gold_tool_names, row_tools

log = logging.getLogger(__name__)


def chat_ids(tokenizer, messages: Sequence[Mapping], tools: Sequence[Mapping] | None, *, add_generation_prompt: bool = False) -> list[int]:
    out = tokenizer.apply_chat_template(list(messages), tools=list(tools) if tools else None, tokenize=True,
                                        add_generation_prompt=add_generation_prompt, return_dict=True)
    return list(out["input_ids"])


def build_examples(rows: Sequence[Mapping], tokenizer, render: RenderConfig, context: str = "target",
                   desc: str | None = None) -> tuple[list[dict], dict]:
    """Rows -> ``{"id", "messages", "tools" (JSON string), "n_tokens", "tools_dropped"}`` examples + counts.

    ``tools`` stays a JSON string: TRL's tokenizer step decodes it, and Arrow need not
    unify every API's parameter schema into one struct type.
    """
    examples: list[dict] = []
    stats = {"rows": len(rows), "examples": 0, "skipped_too_long": 0, "skipped_malformed": 0,
             "tools_dropped": 0, "rows_with_tools_dropped": 0}
    style = CallStyle.from_render(render)
    for row in tqdm(rows, desc=desc, disable=desc is None, unit="dialog", mininterval=5):
        try:
            messages = dialog_messages(row, context, style)
            tools = row_tools(row)
        except DialogFormatError as exc:
            stats["skipped_malformed"] += 1
            log.warning("skipping malformed dialog: %s", exc)
            continue
        lengths: dict[int, int] = {}

        def length(ts: list[dict]) -> int:
            n = len(ts)
            if n not in lengths:
                lengths[n] = len(chat_ids(tokenizer, messages, ts))
            return lengths[n]

        kept, dropped = fit_tools(tools, gold_tool_names(row), length, render.max_length)
        n_tokens = length(kept)
        if n_tokens > render.max_length:
            stats["skipped_too_long"] += 1
            continue
        if dropped:
            stats["tools_dropped"] += dropped
            stats["rows_with_tools_dropped"] += 1
        examples.append({"id": str(row.get("id", len(examples))), "messages": messages,
                         "tools": json.dumps(kept, ensure_ascii=False), "n_tokens": n_tokens, "tools_dropped": dropped})
    stats["examples"] = len(examples)
    if stats["skipped_too_long"] or stats["rows_with_tools_dropped"]:
        log.info("render budget %d tokens: %d rows lost %d distractor tools, %d rows skipped as too long",
                 render.max_length, stats["rows_with_tools_dropped"], stats["tools_dropped"], stats["skipped_too_long"])
    return examples, stats


def backbone_and_head(model):
    """(the transformer body returning hidden states, the LM head) of a HF causal LM, LoRA-wrapped or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(base, base.base_model_prefix, None)
    head = base.get_output_embeddings()
    if body is None or head is None:
        raise ValueError(f"{type(base).__name__}: expected a causal LM with a '{base.base_model_prefix}' body and an "
                         "output embedding (LM head)")
    return body, head


def target_spans(tokenizer, examples: Sequence[Mapping]) -> list[tuple[list[int], int]]:
    """(full ids, index where the target turn starts) per example; the target is the last message."""
    out = []
    for ex in examples:
        tools = json.loads(ex["tools"]) if isinstance(ex["tools"], str) else ex["tools"]
        msgs = list(ex["messages"])
        prompt = chat_ids(tokenizer, msgs[:-1], tools, add_generation_prompt=True)
        full = chat_ids(tokenizer, msgs, tools)
        if full[:len(prompt)] != prompt:
            raise ValueError(f"example {ex.get('id')}: the rendered prompt is not a prefix of prompt + target; the chat "
                             "template must render earlier turns identically with and without the target turn")
        out.append((full, len(prompt)))
    return out


def target_nll(model, tokenizer, examples: Sequence[Mapping], *, batch_size: int = 32, device: str = "cpu",
               desc: str | None = None, precision: str = "float32") -> list[float]:
    """Mean NLL (nats/token) of each example's target turn under ``model``; perplexity = exp of it.

    ``precision="bfloat16"``: matmuls under autocast (the NLL itself is summed in fp32)."""
    import torch

    from toolkiln.policy.model import autocast

    spans = target_spans(tokenizer, examples)
    order = sorted(range(len(spans)), key=lambda i: len(spans[i][0]))  # similar lengths share a batch: less padding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    result = [math.nan] * len(spans)
    model.eval()
    model.to(device)
    backbone, head = backbone_and_head(model)
    with torch.inference_mode(), autocast(device, precision):
        for s in tqdm(range(0, len(order), batch_size), desc=desc, disable=desc is None, unit="batch", mininterval=5):
            idx = order[s:s + batch_size]
            width = max(len(spans[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            tgt = torch.zeros((len(idx), width), dtype=torch.bool)
            for r, i in enumerate(idx):
                full, start = spans[i]
                ids[r, :len(full)] = torch.tensor(full)
                att[r, :len(full)] = 1
                tgt[r, start:len(full)] = True
            hidden = backbone(input_ids=ids.to(device), attention_mask=att.to(device)).last_hidden_state
            # position t predicts token t+1; only the target's positions reach the LM head (a tenth of the tokens)
            mask = tgt[:, 1:].to(device)
            logits = head(hidden[:, :-1][mask]).float()  # (n_target, V)
            tok_nll = torch.nn.functional.cross_entropy(logits, ids[:, 1:].to(device)[mask], reduction="none")
            row = mask.nonzero()[:, 0]
            sums = torch.zeros(len(idx), device=device).index_add_(0, row, tok_nll)
            nll = sums / mask.sum(-1).clamp(min=1)
            for r, i in enumerate(idx):
                result[i] = float(nll[r])
    return result
