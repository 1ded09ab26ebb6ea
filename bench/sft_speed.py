"""Warm-up SFT throughput: TRL SFTTrainer vs a plain PyTorch loop, and model FLOP utilisation (iTool §3.1 warm-up).

Same model (the ``policy`` section of params.yaml, from scratch), same tokenizer, same
examples in the same order and the same batches, measured in one run:

* ``peak``  — the best fp32 GEMM rate torch reaches on this machine (square matmuls);
* ``plain`` — forward + backward + clip + AdamW step over pre-tokenised, right-padded
  batches with assistant-only labels: the baseline;
* ``trl``   — ``toolkiln.policy.sft.train_sft`` (TRL ``SFTTrainer``, assistant_only_loss).

Reported: training tokens/s (all tokens in the batch and non-padding ones), model FLOPs
per step (6·N per token for the matmuls incl. the LM head + 12·L·d·T for attention,
PaLM's convention), MFU against the measured peak, and TRL's time per step as a ratio
to the plain loop. Data: ``data/train.parquet`` when present, else the test fixture corpus.

With ``--base FOLDER`` (e.g. ``checkpoints/base``, the package-shipped SmolLM2-135M) it
measures instead the ways to fine-tune a pretrained model on a CPU, same examples and
batches for each, all through ``train_sft`` (TRL ``SFTTrainer``):

* ``full``            — every weight trains, TRL's own loss (LM head over every position): the baseline;
* ``full+compact``    — the same, LM head only over supervised positions (``CompactHeadSFTTrainer``);
* ``lora``            — LoRA r=16 on every linear layer of every block, compact head;
* ``lora top-k``      — LoRA on the top k blocks only: no backward below them;
* ``full top-k``      — all weights of the top k blocks train, the rest frozen;
* ``... bf16``        — the same under bfloat16 autocast (``policy.precision``; fp32 weights and optimizer).

Reported: tokens/s (non-padding) and the speed-up over ``full``, in one run.

    python -m bench sft_speed            # or: python bench/sft_speed.py --steps 30
    python bench/sft_speed.py --base checkpoints/base --steps 8 --top-layers 8
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


def gemm_peak(threads: int, sizes=(256, 512, 1024, 2048), repeats: int = 5) -> dict:
    """Best fp32 matmul GFLOP/s over a few square sizes."""
    import torch

    best = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps = max(2, int(2e9 / (2 * n ** 3)))  # ~2 GFLOP per timing
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b)
            rates.append(2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
        best[n] = max(rates)
    return {"threads": threads, "gflops_by_size": best, "peak_gflops": max(best.values())}


def load_rows(path: Path, n: int):
    import polars as pl

    if path.exists():
        return pl.read_parquet(path).head(n).to_dicts(), str(path)
    sys.path.insert(0, str(ROOT / "tests" / "policy"))
    from fixtures import make_dialogs

    return make_dialogs(n, seed=0).to_dicts(), "tests/policy/fixtures.py (data/train.parquet absent)"


def step_flops(model_cfg, n_matmul_params: int, batch_shapes: list[tuple[int, int]]) -> list[float]:
    """Training FLOPs per step: (6·N + 12·L·d·T) per token, on every token of the padded (B, T) batch."""
    L, d = model_cfg.num_hidden_layers, model_cfg.hidden_size
    return [(6 * n_matmul_params + 12 * L * d * T) * B * T for B, T in batch_shapes]


def plain_loop(model, batches, lr: float, warmup: int) -> list[float]:
    """Baseline: per-step wall times of a bare PyTorch training loop."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    times = []
    for ids, att, labels in batches:
        t0 = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--train", default=str(ROOT / "data" / "train.parquet"))
    ap.add_argument("--steps", type=int, default=30, help="measured optimizer steps per method")
    ap.add_argument("--warmup", type=int, default=3, help="steps excluded from timing")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--base", default="", help="a local HF folder: benchmark fine-tuning variants of it instead")
    ap.add_argument("--top-layers", type=int, default=8, help="--base: k of the top-k variants")
    ap.add_argument("--batch-size", type=int, default=4, help="--base: examples per step")
    ap.add_argument("--variants", nargs="*", default=[],
                    help="--base: run only these variants (by name, e.g. 'full top-8 bf16'; 'full' always runs)")
    ap.add_argument("--out", default="sft_speed_base", help="--base: results file name under bench/results/")
    args = ap.parse_args(argv)
    if args.base:
        return base_variants(args)

    import torch

    from toolkiln.config import load_params
    from toolkiln.policy.examples import build_examples
    from toolkiln.policy.model import build_tokenizer, scratch_model
    from toolkiln.policy.sft import train_sft

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params)
    pol, sft = params.policy, params.sft
    bs = sft.batch_size
    n_steps = args.steps + args.warmup
    rows, source = load_rows(Path(args.train), max(200, n_steps * bs))
    tok = build_tokenizer(pol, rows)
    examples, _ = build_examples(rows, tok, pol.render, sft.context)
    examples = (examples * (n_steps * bs // max(1, len(examples)) + 1))[:n_steps * bs]

    # identical batches for both methods: TRL reads the dataset sequentially and pads to the batch maximum
    batches, shapes, real_tokens = [], [], []
    for s in range(0, len(examples), bs):
        enc = [tok.apply_chat_template(e["messages"], tools=__import__("json").loads(e["tools"]), tokenize=True,
                                       return_dict=True, return_assistant_tokens_mask=True) for e in examples[s:s + bs]]
        T = max(len(x["input_ids"]) for x in enc)
        ids = torch.full((len(enc), T), tok.pad_token_id)
        att = torch.zeros((len(enc), T), dtype=torch.long)
        lab = torch.full((len(enc), T), -100)
        for r, x in enumerate(enc):
            n = len(x["input_ids"])
            ids[r, :n] = torch.tensor(x["input_ids"])
            att[r, :n] = 1
            m = torch.tensor(x["assistant_masks"], dtype=torch.bool)
            lab[r, :n] = torch.where(m, ids[r, :n], torch.tensor(-100))
        batches.append((ids, att, lab))
        shapes.append((len(enc), T))
        real_tokens.append(int(att.sum()))

    peak = gemm_peak(torch.get_num_threads())
    model = scratch_model(pol.scratch, tok, seed=0)
    n_all = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    # matmul params: everything but the input lookup; a tied head still costs a d x V matmul
    n_matmul = n_all - emb + model.config.vocab_size * model.config.hidden_size
    flops = step_flops(model.config, n_matmul, shapes)

    plain_t = plain_loop(model, batches, sft.learning_rate, args.warmup)

    timer = step_timer()
    trl_model = scratch_model(pol.scratch, tok, seed=0)
    cfg = sft.model_copy(update={"logging_steps": 10, "eval_samples": 0, "max_steps": 0})
    _, res = train_sft(trl_model, tok, examples, cfg, seed=0, device="cpu", callbacks=[timer],
                       max_length=pol.render.max_length)
    trl_wall = res.metrics["train_seconds"]

    w = args.warmup
    out_rows = []
    summary = {}
    for name, times in (("plain", plain_t), ("trl", timer.t)):
        t = sum(times[w:])
        padded = sum(B * T for B, T in shapes[w:len(times)])
        real = sum(real_tokens[w:len(times)])
        achieved = sum(flops[w:len(times)]) / t / 1e9
        summary[name] = {"seconds": t, "steps": len(times) - w, "tokens_per_s": padded / t,
                         "nonpad_tokens_per_s": real / t, "gflops": achieved, "mfu": achieved / peak["peak_gflops"]}
        out_rows.append({"method": name, "steps": len(times) - w, "s/step": t / (len(times) - w),
                         "tok/s (all)": padded / t, "tok/s (non-pad)": real / t, "GFLOP/s": achieved,
                         "MFU": achieved / peak["peak_gflops"]})
    ratio = summary["trl"]["seconds"] / summary["plain"]["seconds"]
    summary["trl_over_plain_time"] = ratio
    summary["trl_train_call_seconds"] = trl_wall
    print(f"data: {source}; model {n_all / 1e6:.2f}M params ({n_matmul / 1e6:.2f}M in matmuls), batch {bs}, "
          f"mean padded length {sum(T for _, T in shapes) / len(shapes):.0f}, "
          f"padding {1 - sum(real_tokens) / sum(B * T for B, T in shapes):.1%}")
    print(f"fp32 GEMM peak ({peak['threads']} threads): {peak['peak_gflops']:.1f} GFLOP/s "
          f"({', '.join(f'{n}: {g:.1f}' for n, g in peak['gflops_by_size'].items())})")
    print(table(out_rows, ["method", "steps", "s/step", "tok/s (all)", "tok/s (non-pad)", "GFLOP/s", "MFU"]))
    print(f"TRL time per step / plain loop: {ratio:.2f}x")
    payload = {"data": source, "model_params": n_all, "matmul_params": n_matmul, "batch_size": bs,
               "policy": pol.scratch.model_dump(), "peak": peak, "results": summary, "warmup_steps": w}
    path = record("sft_speed", payload)
    print(f"wrote {path.relative_to(ROOT)}")
    return payload


def step_timer():
    """A TrainerCallback recording each optimizer step's wall time in ``.t``."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.t: list[float] = []
            self.t0 = 0.0

        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.t.append(time.perf_counter() - self.t0)

    return StepTimer()


def base_variants(args) -> dict:
    """Fine-tuning variants of a pretrained HF model on the same examples (see the module docstring)."""
    import torch

    from toolkiln.config import load_params
    from toolkiln.policy.examples import build_examples
    from toolkiln.policy.model import load_pretrained
    from toolkiln.policy.sft import train_sft

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params)
    pol = params.policy.model_copy(update={"base_model": args.base})
    bs, n_steps, w = args.batch_size, args.steps + args.warmup, args.warmup
    _, tok = load_pretrained(args.base, pol)
    rows, source = load_rows(Path(args.train), max(200, n_steps * bs))
    examples, _ = build_examples(rows, tok, pol.render, params.sft.context)
    examples = examples[:n_steps * bs]
    nonpad = [sum(e["n_tokens"] for e in examples[s:s + bs]) for s in range(0, len(examples), bs)]
    padded = [bs * max(e["n_tokens"] for e in examples[s:s + bs]) for s in range(0, len(examples), bs)]
    cfg = params.sft.model_copy(update={"batch_size": bs, "grad_accum": 1, "logging_steps": 1000, "eval_samples": 0,
                                        "max_steps": 0, "learning_rate": 1e-4})
    from toolkiln.policy.config import LoRAConfig
    from toolkiln.policy.model import lora_config

    lora_all = LoRAConfig(enabled=True, r=16, alpha=32, dropout=0.0,
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    k = args.top_layers
    variants = [("full", None, 0, False, "float32"), ("full+compact", None, 0, True, "float32"),
                ("lora", lora_all, 0, True, "float32"), (f"lora top-{k}", lora_all, k, True, "float32"),
                (f"full top-{k}", None, k, True, "float32"), ("full+compact bf16", None, 0, True, "bfloat16"),
                (f"lora top-{k} bf16", lora_all, k, True, "bfloat16"), (f"full top-{k} bf16", None, k, True, "bfloat16")]
    if args.variants:
        unknown = set(args.variants) - {v[0] for v in variants} - {"full"}
        if unknown:
            raise SystemExit(f"--variants: unknown {sorted(unknown)}; expected some of {[v[0] for v in variants]}")
        # the baseline always runs: every ratio is against it, in the same run
        variants = [v for v in variants if v[0] == "full" or v[0] in args.variants]
    rows_out, summary = [], {}
    for name, lcfg, top, compact, precision in variants:
        model, tok = load_pretrained(args.base, pol)
        timer = step_timer()
        peft = lora_config(pol.model_copy(update={"lora": lcfg})) if lcfg is not None else None
        _, res = train_sft(model, tok, examples, cfg, seed=0, device="cpu", callbacks=[timer], peft_config=peft,
                           max_length=pol.render.max_length, top_layers=top, compact_head=compact,
                           precision=precision)
        t = sum(timer.t[w:])
        steps = len(timer.t) - w
        summary[name] = {"seconds": t, "steps": steps, "nonpad_tokens_per_s": sum(nonpad[w:len(timer.t)]) / t,
                         "padded_tokens_per_s": sum(padded[w:len(timer.t)]) / t,
                         "trainable_params": res.metrics["trainable_params"], "loss": res.metrics["train_loss_mean"]}
        del model
    base = summary["full"]["nonpad_tokens_per_s"]
    for name, s in summary.items():
        s["speedup_vs_full"] = s["nonpad_tokens_per_s"] / base
        rows_out.append({"variant": name, "trainable": f"{s['trainable_params'] / 1e6:.1f}M", "steps": s["steps"],
                         "s/step": s["seconds"] / s["steps"], "tok/s": s["nonpad_tokens_per_s"],
                         "x full": s["speedup_vs_full"], "mean loss": s["loss"]})
    print(f"data: {source}; {args.base}; batch {bs}; mean example {sum(nonpad) / len(examples):.0f} tokens; "
          f"padding {1 - sum(nonpad) / sum(padded):.1%}; torch threads {torch.get_num_threads()}")
    print(table(rows_out, ["variant", "trainable", "steps", "s/step", "tok/s", "x full", "mean loss"]))
    payload = {"data": source, "base": args.base, "batch_size": bs, "warmup_steps": w, "results": summary}
    path = record(args.out, payload)
    print(f"wrote {path.relative_to(ROOT)}")
    return payload


if __name__ == "__main__":
    main()
