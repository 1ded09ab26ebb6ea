"""Step-level MCTS cost: lockstep and batched siblings + cached prompt/prefix vs a naive search, same prompts, same run.

Every side runs the search with the same MCTS params (``itool.mcts`` defaults: width 3,
depth 3, 5 iterations, temperature 1.5) on the same prompts and seeds; only the batching
differs (:class:`toolkiln.itool.mcts.HFStepPolicy`):

* ``lockstep`` (the stage's mode) — :func:`toolkiln.itool.mcts.search_many` over groups of
  ``--lockstep`` prompts: every tree's expansion of one iteration in ONE batch, each row
  from its own prompt's KV cache;
* ``batched+cache`` — the same with groups of one prompt: the prompt's KV cache is computed
  once; an expansion samples the ``width`` siblings from a copy of it in one batch;
* ``naive`` — one sequence per ``generate``, the whole prompt + prefix run again each time.

Reported per side: seconds, model forward calls, rollouts, kept pairs (the default pair
filters), and seconds / forward calls per kept pair and per rollout (rollouts are the unit of
work; kept pairs also depend on what was sampled, which differs between the sides because
batched and one-by-one sampling draw different random numbers).

Without ``--checkpoint`` the policy is a small from-scratch Llama (128 wide, 2 layers) given a short SFT on hand-written dialogs
(:mod:`toolkiln.testing.examples`) so it writes call-shaped text; prompts are held-out
dialogs of the same kind. With ``--checkpoint checkpoints/warmup --train data/train.parquet``
it measures the real policy on training prompts.

    python bench/mcts_speed.py --n 4
    python bench/mcts_speed.py --checkpoint checkpoints/warmup --train data/train.parquet --n 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import record, table  # noqa: E402


def _tiny_policy(steps: int, seed: int, cache: Path | None):
    """A from-scratch policy trained briefly on hand-written dialogs: (model, tokenizer, PolicyConfig, facts).

    Saved under ``cache`` (keyed by steps and seed) and reloaded from there next time: the
    training is setup, not what the benchmark measures, and takes minutes on a loaded machine.
    """
    import json

    from toolkiln.policy.config import PolicyConfig, ScratchModelConfig, SFTConfig, TokenizerConfig
    from toolkiln.policy.examples import build_examples
    from toolkiln.policy.model import build_tokenizer, load_pretrained, save_policy, scratch_model
    from toolkiln.policy.sft import train_sft
    from toolkiln.testing.examples import example_dialogs

    # small enough to train in minutes on a shared 2-core machine, big enough that a prompt's prefill costs something
    size = ScratchModelConfig(hidden_size=128, n_layers=2, n_heads=4, n_kv_heads=4, intermediate_size=384)
    cfg = PolicyConfig(scratch=size, tokenizer=TokenizerConfig(vocab_size=1024, min_frequency=1))
    folder = cache / f"tiny_s{steps}_seed{seed}" if cache else None
    if folder is not None and (folder / "bench_info.json").is_file():
        model, tok = load_pretrained(folder, cfg)
        return model.eval(), tok, cfg, {**json.loads((folder / "bench_info.json").read_text()), "cached": str(folder)}
    rows = example_dialogs(300, seed=seed).to_dicts()
    tok = build_tokenizer(cfg, rows)
    model = scratch_model(cfg.scratch, tok, seed)
    examples, _ = build_examples(rows, tok, cfg.render, "target")
    sft = SFTConfig(
        order="random", batch_size=8, learning_rate=3e-3, warmup_ratio=0.05, logging_steps=50, eval_samples=0
    )
    need = steps * sft.batch_size
    ordered = [examples[i % len(examples)] for i in range(need)]
    model, res = train_sft(model, tok, ordered, sft, seed=seed, max_steps=steps, max_length=cfg.render.max_length)
    info = {
        "sft_steps": steps,
        "sft_loss_mean": res.metrics["train_loss_mean"],
        "params": sum(p.numel() for p in model.parameters()),
    }
    if folder is not None:
        save_policy(model, tok, folder, cfg)
        (folder / "bench_info.json").write_text(json.dumps(info))
    return model.eval(), tok, cfg, info


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="", help="HF policy folder (default: a briefly trained tiny policy)")
    ap.add_argument("--train", default=str(ROOT / "data" / "train.parquet"), help="prompts for --checkpoint")
    ap.add_argument("--n", type=int, default=4, help="prompts searched per side")
    ap.add_argument("--tiny-steps", type=int, default=150, help="SFT steps of the tiny policy")
    ap.add_argument(
        "--tiny-cache",
        default=str(ROOT / "cache" / "mcts_speed"),
        help="where the trained tiny policy is kept between runs ('' = train it every time)",
    )
    ap.add_argument("--iterations", type=int, default=0, help="override itool.mcts.iterations (0 = default)")
    ap.add_argument("--max-new-tokens", type=int, default=0, help="override itool.mcts.max_new_tokens (0 = default)")
    ap.add_argument("--lockstep", type=int, default=0, help="prompts per lockstep group (0 = itool.mcts.lockstep)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="mcts_speed", help="name of the JSON record in bench/results/")
    args = ap.parse_args(argv)

    import polars as pl
    import torch

    from toolkiln.itool.config import MCTSConfig, PairsConfig
    from toolkiln.itool.deficiency import render_prompts
    from toolkiln.itool.mcts import HFStepPolicy, SearchJob, search_many
    from toolkiln.itool.pairs import sibling_pairs
    from toolkiln.policy.config import PolicyConfig
    from toolkiln.policy.model import load_pretrained
    from toolkiln.testing.examples import example_dialogs

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.checkpoint:
        cfg = PolicyConfig(base_model=args.checkpoint)
        model, tok = load_pretrained(args.checkpoint, cfg)
        rows = (
            pl.read_parquet(args.train)
            .sample(n=min(4 * args.n, pl.read_parquet(args.train).height), seed=args.seed, shuffle=True)
            .to_dicts()
        )
        policy_info = {"checkpoint": args.checkpoint, "params": sum(p.numel() for p in model.parameters())}
    else:
        cache = Path(args.tiny_cache) if args.tiny_cache else None
        model, tok, cfg, policy_info = _tiny_policy(args.tiny_steps, args.seed, cache)
        rows = example_dialogs(4 * args.n, seed=args.seed + 99).to_dicts()
    setup_s = time.perf_counter() - t0
    prompts, _ = render_prompts(rows, tok, cfg.render)
    tool = [p for p in prompts if p.gold_calls]
    prompts = (tool + [p for p in prompts if not p.gold_calls])[: args.n]  # call targets first: they make the pairs
    over = {
        k: v
        for k, v in (
            ("iterations", args.iterations),
            ("max_new_tokens", args.max_new_tokens),
            ("lockstep", args.lockstep),
        )
        if v
    }
    mcfg = MCTSConfig(**over)
    pcfg = PairsConfig()
    results = []
    for name, batched in (("lockstep", True), ("batched+cache", True), ("naive", False)):
        policy = HFStepPolicy(
            model,
            tok,
            temperature=mcfg.temperature,
            top_k=mcfg.top_k,
            max_new_tokens=mcfg.max_new_tokens,
            batched=batched,
            prefix_cache=batched,
        )
        pairs = rollouts = 0
        t = time.perf_counter()
        k = mcfg.lockstep if name == "lockstep" else 1  # a group of one is the single-prompt search
        found = []
        for i in range(0, len(prompts), k):
            torch.manual_seed(args.seed + i)
            found += search_many(policy, [SearchJob(p.text, p.gold_calls) for p in prompts[i : i + k]], mcfg)
        for res in found:
            pairs += len(sibling_pairs(res.root, pcfg))
            rollouts += res.rollouts
        secs = time.perf_counter() - t
        policy.close()
        results.append(
            {
                "search": name,
                "prompts": len(prompts),
                "seconds": secs,
                "forward_passes": policy.forward_passes,
                "rollouts": rollouts,
                "kept_pairs": pairs,
                "s_per_pair": secs / pairs if pairs else None,
                "fwd_per_pair": policy.forward_passes / pairs if pairs else None,
                "s_per_rollout": secs / rollouts,
                "fwd_per_rollout": policy.forward_passes / rollouts,
            }
        )
    slow = results[-1]
    speedups = {}
    for fast in results[:-1]:  # each faster side over naive
        speedup = {
            "seconds_per_rollout": slow["s_per_rollout"] / fast["s_per_rollout"],
            "forwards_per_rollout": slow["fwd_per_rollout"] / fast["fwd_per_rollout"],
        }
        if fast["s_per_pair"] and slow["s_per_pair"]:
            speedup["seconds_per_pair"] = slow["s_per_pair"] / fast["s_per_pair"]
            speedup["forwards_per_pair"] = slow["fwd_per_pair"] / fast["fwd_per_pair"]
        speedups[fast["search"]] = speedup
    cols = [
        "search",
        "prompts",
        "seconds",
        "forward_passes",
        "rollouts",
        "kept_pairs",
        "s_per_pair",
        "fwd_per_pair",
        "s_per_rollout",
        "fwd_per_rollout",
    ]
    print(table(results, cols))
    for side, speedup in speedups.items():
        print(f"speed-up of {side} over naive: " + ", ".join(f"{k} {v:.2f}x" for k, v in speedup.items()))
    payload = {
        "policy": policy_info,
        "setup_seconds": setup_s,
        "mcts": mcfg.model_dump(),
        "results": results,
        "speedup": speedups["lockstep"],  # the stage's mode over naive
        "speedups": speedups,
        "command": "python bench/mcts_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"written {record(args.out, payload)}")
    return payload


if __name__ == "__main__":
    main()
