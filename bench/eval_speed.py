"""Evaluation generation speed: plain batched ``generate`` vs the harness's generator, same prompts, same run.

Both sides are :class:`toolkiln.evaluate.harness.HFGenerator` on one loaded model and
the same length-sorted batches; greedy decoding, the same ``max_new_tokens``:

* ``plain`` — left-padded batched ``model.generate`` until EOS or ``max_new_tokens``;
* ``fast``  — the shared token prefix of all prompts run once and its KV cache reused by
  every batch (``prefix_cache``), each row stopped at the end of its call list
  (``stop_at_call_end``);
* ``fast bf16`` — ``fast`` with bfloat16 weights (``evaluate.dtype: bfloat16``; AMX matmuls on
  CPUs that have them), its verdicts compared with fp32 ``fast``'s.

Prompts: a seeded sample of the held-out dialogs (``data/test.parquet``, the checkpoint's
rendering) and a seeded sample of BFCL categories (BFCL's prompt: a long shared
instruction prefix). Reported per prompt set: seconds, prompts/s, the speed-up, and how
many outputs are identical and how many *verdicts* agree (a finished call list is all a
parser reads, so outputs after it may differ while verdicts do not).

    python bench/eval_speed.py --checkpoint checkpoints/warmup --n 48

``--batch-sizes 4,8,16`` instead compares the evaluator's own setting (``fast``, ``evaluate.dtype``)
across batch sizes, against the first size listed, with the share of the time spent on the
prompts alone (one forward pass over each batch, no generation): which of prefill and decoding
a faster evaluation has to attack. ``--lookup 0,4,8`` compares prompt-lookup draft sizes
(``evaluate.prompt_lookup``) in the evaluator's setting: seconds, forward passes, tokens kept per
pass, and the outputs against the first size listed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import portable, record, table  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "warmup"))
    ap.add_argument("--test", default=str(ROOT / "data" / "test.parquet"))
    ap.add_argument("--n", type=int, default=48, help="prompts per set")
    ap.add_argument("--bfcl", default="simple_python,multiple,irrelevance")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-sizes", default="", help="e.g. 4,8,16: batch-size sweep of the evaluator's setting")
    ap.add_argument("--dtype", default="bfloat16", help="the sweeps' dtype (evaluate.dtype)")
    ap.add_argument("--lookup", default="", help="e.g. 0,4,8: prompt-lookup draft sizes of the evaluator's setting")
    args = ap.parse_args(argv)

    import polars as pl
    import torch

    from toolkiln.callparse import parse_calls
    from toolkiln.evaluate import bfcl
    from toolkiln.evaluate.harness import HFGenerator, dialog_prompt
    from toolkiln.policy.render import CallStyle

    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.checkpoint, "config.json").is_file():
        print(f"no checkpoint at {args.checkpoint}; run `dvc repro warmup_sft` (or pass --checkpoint)")
        return {}
    sets: dict[str, list[dict]] = {}
    if Path(args.test).exists():
        df = pl.read_parquet(args.test).sample(n=args.n, seed=args.seed, shuffle=True)
        style = CallStyle.load(args.checkpoint)
        sets["held-out dialogs"] = [dialog_prompt(r, style) for r in df.to_dicts()]
    cats = [c for c in args.bfcl.split(",") if c]
    per = max(1, args.n // max(1, len(cats)))
    sets["BFCL"] = [
        {"messages": bfcl.prompt_messages(e), "tools": None}
        for c in cats
        for e in bfcl.load_category(c, limit=per, seed=args.seed)
    ]

    if args.batch_sizes:
        return batch_sweep(args, sets, [int(b) for b in args.batch_sizes.split(",") if b])
    if args.lookup:
        return lookup_sweep(args, sets, [int(k) for k in args.lookup.split(",") if k])
    plain = HFGenerator(
        args.checkpoint,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        prefix_cache=False,
        stop_at_call_end=False,
    )
    fast = HFGenerator(
        args.checkpoint,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        model=plain.model,
        tokenizer=plain.tok,
    )
    fast16 = HFGenerator(
        args.checkpoint, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, dtype="bfloat16"
    )
    rows, results = [], {}
    for name, prompts in sets.items():
        out_plain = plain(prompts)
        s_plain = dict(plain.stats)
        out_fast = fast(prompts)
        s_fast = dict(fast.stats)
        out_16 = fast16(prompts)
        s_16 = dict(fast16.stats)
        same = sum(a == b for a, b in zip(out_plain, out_fast))
        agree = sum(_verdict(a, parse_calls) == _verdict(b, parse_calls) for a, b in zip(out_plain, out_fast))
        agree16 = sum(_verdict(a, parse_calls) == _verdict(b, parse_calls) for a, b in zip(out_fast, out_16))
        res = {
            "bf16_s": s_16["seconds"],
            "bf16_speedup_vs_plain": s_plain["seconds"] / s_16["seconds"],
            "bf16_same_parse_as_fp32": agree16 / len(prompts),
            "prompts": len(prompts),
            "plain_s": s_plain["seconds"],
            "fast_s": s_fast["seconds"],
            "speedup": s_plain["seconds"] / s_fast["seconds"],
            "shared_prefix_tokens": s_fast["shared_prefix_tokens"],
            "mean_prompt_tokens": s_fast["prompt_tokens"] / max(1, len(prompts)),
            "plain_new_tokens": s_plain["new_tokens"],
            "fast_new_tokens": s_fast["new_tokens"],
            "identical_outputs": same / len(prompts),
            "same_parse": agree / len(prompts),
        }
        results[name] = res
        rows.append(
            {
                "prompts": name,
                "n": len(prompts),
                "prefix tok": res["shared_prefix_tokens"],
                "plain s": res["plain_s"],
                "fast s": res["fast_s"],
                "x plain": res["speedup"],
                "new tok plain/fast": f"{res['plain_new_tokens']}/{res['fast_new_tokens']}",
                "same parse": f"{res['same_parse']:.0%}",
                "bf16 s": res["bf16_s"],
                "bf16 x plain": res["bf16_speedup_vs_plain"],
                "bf16 same parse": f"{res['bf16_same_parse_as_fp32']:.0%}",
            }
        )
    print(
        f"checkpoint {args.checkpoint}; batch {args.batch_size}; max_new_tokens {args.max_new_tokens}; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        table(
            rows,
            [
                "prompts",
                "n",
                "prefix tok",
                "plain s",
                "fast s",
                "x plain",
                "new tok plain/fast",
                "same parse",
                "bf16 s",
                "bf16 x plain",
                "bf16 same parse",
            ],
        )
    )
    payload = {
        "checkpoint": args.checkpoint,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "results": results,
    }
    path = record("eval_speed", payload)
    print(f"wrote {portable(path)}")
    return payload


def prefill_seconds(gen, prompts: list[dict]) -> float:
    """Seconds of one forward pass over every batch the generator would run (same sorting, padding, prefix
    cache): the prompt side of generation, without a single new token."""
    import time

    import torch

    ids = sorted((gen.tok(gen.render(p), add_special_tokens=False)["input_ids"] for p in prompts), key=len)
    p, cache = gen._prefix(ids)
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(ids), gen.batch_size):
            x, att, kwargs = gen.batch_inputs(ids[s : s + gen.batch_size], p, cache)
            pos = (att.cumsum(-1) - 1).clamp(min=0)[:, p:]  # positions follow the mask, as in generate
            gen.model(
                input_ids=x[:, p:], attention_mask=att, position_ids=pos, use_cache=True, logits_to_keep=1, **kwargs
            )
    return time.perf_counter() - t0


def _sweep(
    args, sets: dict[str, list[dict]], settings: list, generator_kw, measure, *, name: str, key: str, **meta
) -> dict:
    """Every prompt set generated once per setting on one loaded model, the first setting the reference.

    ``generator_kw(setting)``: the HFGenerator keywords of a setting; ``measure(setting, gen, prompts, out, st,
    ref_out, ref_s)``: its (result dict, table row). Prints the table and records ``name`` (results under ``key``)."""
    from toolkiln.evaluate.harness import HFGenerator

    first = {"batch_size": args.batch_size, **generator_kw(settings[0])}
    base = HFGenerator(args.checkpoint, max_new_tokens=args.max_new_tokens, dtype=args.dtype, **first)
    rows, results = [], {}
    for set_name, prompts in sets.items():
        ref_out, ref_s = None, None
        for setting in settings:
            kw = {"batch_size": args.batch_size, **generator_kw(setting)}
            gen = HFGenerator(
                args.checkpoint, max_new_tokens=args.max_new_tokens, model=base.model, tokenizer=base.tok, **kw
            )
            out = gen(prompts)
            st = dict(gen.stats)
            if ref_out is None:
                ref_out, ref_s = out, st["seconds"]
            res, row = measure(setting, gen, prompts, out, st, ref_out, ref_s)
            results.setdefault(set_name, []).append(res)
            rows.append({"prompts": set_name, **row})
    print(f"checkpoint {args.checkpoint}; {args.dtype}; max_new_tokens {args.max_new_tokens}")
    print(table(rows, list(rows[0])))
    payload = {"checkpoint": args.checkpoint, "dtype": args.dtype, "max_new_tokens": args.max_new_tokens, **meta}
    payload[key] = results
    path = record(name, payload)
    print(f"wrote {portable(path)}")
    return payload


def _same_parse(ref_out: list[str], out: list[str]) -> float:
    from toolkiln.callparse import parse_calls

    return sum(_verdict(a, parse_calls) == _verdict(c, parse_calls) for a, c in zip(ref_out, out)) / len(out)


def batch_sweep(args, sets: dict[str, list[dict]], sizes: list[int]) -> dict:
    """The evaluator's setting at each batch size in ``sizes`` against the first, with the prefill's share."""

    def measure(b, gen, prompts, out, st, ref_out, ref_s):
        pre = prefill_seconds(gen, prompts)
        res = {
            "batch_size": b,
            "seconds": st["seconds"],
            "prompts_per_s": len(prompts) / st["seconds"],
            "speedup": ref_s / st["seconds"],
            "prefill_s": pre,
            "prefill_share": pre / st["seconds"],
            "mean_prompt_tokens": st["prompt_tokens"] / max(1, len(prompts)),
            "new_tokens": st["new_tokens"],
            "same_parse": _same_parse(ref_out, out),
        }
        row = {
            "batch": b,
            "s": res["seconds"],
            f"x batch {sizes[0]}": res["speedup"],
            "prefill share": f"{res['prefill_share']:.0%}",
            "prompt tok": round(res["mean_prompt_tokens"]),
            "new tok": res["new_tokens"],
            "same parse": f"{res['same_parse']:.0%}",
        }
        return res, row

    return _sweep(args, sets, sizes, lambda b: {"batch_size": b}, measure, name="eval_speed_batch", key="batch_sweep")


def lookup_sweep(args, sets: dict[str, list[dict]], ks: list[int]) -> dict:
    """The evaluator's setting with prompt-lookup drafts of each size in ``ks`` against the first (0 = off)."""

    def measure(k, gen, prompts, out, st, ref_out, ref_s):
        look = st.get("prompt_lookup", {})
        passes = look.get("forward_passes")
        res = {
            "prompt_lookup": k,
            "seconds": st["seconds"],
            "speedup": ref_s / st["seconds"],
            "new_tokens": st["new_tokens"],
            "forward_passes": passes,
            "tokens_per_pass": st["new_tokens"] / passes if passes else None,
            "drafted": look.get("drafted"),
            "accepted": look.get("accepted"),
            "identical_outputs": sum(a == c for a, c in zip(ref_out, out)) / len(prompts),
            "same_parse": _same_parse(ref_out, out),
        }
        row = {
            "k": k,
            "s": res["seconds"],
            f"x k={ks[0]}": res["speedup"],
            "new tok": res["new_tokens"],
            "tok / pass": "" if passes is None else round(res["tokens_per_pass"], 2),
            "accepted": "" if passes is None else f"{res['accepted']}/{res['drafted']}",
            "identical": f"{res['identical_outputs']:.0%}",
            "same parse": f"{res['same_parse']:.0%}",
        }
        return res, row

    return _sweep(
        args,
        sets,
        ks,
        lambda k: {"prompt_lookup": k},
        measure,
        name=f"eval_speed_lookup_{args.dtype}",
        key="lookup_sweep",
        batch_size=args.batch_size,
    )


def _verdict(text, parse_calls):
    """What a parser reads from an output: the first call list (as JSON) or its absence."""
    if text is None:
        return None
    p = parse_calls(text, strict=False)
    return repr(p.calls)


if __name__ == "__main__":
    main()
