"""One self-contained HTML page with every plot and table the pipeline wrote (docs/architecture.md#tracking).

The ``report`` stage reads the ``reports/<stage>/`` folders the other stages fill (PNG plots, CSV
tables, markdown tables, ``metrics.json``) and writes one HTML file that opens from disk with no
network: images are inlined as base64 PNG, styles are inline, there is no script and no external
link. Each figure carries one sentence saying what it shows. A file a stage did not write (the
stage was not run in this profile) becomes a visible "not run" line, never an error.

Every evaluated checkpoint is found by its folder (``reports/eval_<tag>/``), so a profile that adds
checkpoints (scratch, LoRA, preference rounds) gets them in the page without code changes. An
ablation comparison written under ``reports/sweep/`` is included when present.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# The checkpoints the pipeline makes, in the order a reader compares them; unknown tags follow, sorted.
CHECKPOINT_ORDER = ("scratch", "base", "warmup")
MAX_TABLE_ROWS = 60

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2630;background:#f6f7f9}
header{background:#1d2630;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d1da;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:12px 32px 48px}
nav{font-size:13px;margin:12px 0}nav a{margin-right:12px;color:#2a5db0;text-decoration:none}
section{background:#fff;border:1px solid #e1e5ea;border-radius:6px;margin:18px 0;padding:8px 22px 18px}
h2{font-size:18px;border-bottom:1px solid #e1e5ea;padding-bottom:6px}h3{font-size:15px;margin:18px 0 4px}
figure{margin:10px 0 18px}figure img{max-width:100%;border:1px solid #eef0f3}
figcaption,.cap{font-size:13px;color:#4a5563;margin:4px 0 8px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 14px}
th,td{border:1px solid #e1e5ea;padding:3px 8px;text-align:right}th{background:#f0f2f5}
td:first-child,th:first-child{text-align:left}
.notrun{color:#9a5b00;background:#fff7e6;border-left:3px solid #f0a020;padding:4px 10px;font-size:13px}
.kv td{text-align:left}
"""


@dataclass
class Page:
    """What the page holds, for the stage's metrics and the tests."""

    html: str
    sections: list[str] = field(default_factory=list)
    figures: int = 0
    tables: int = 0
    missing: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, root: Path):
        self.root = root
        self.parts: list[str] = []
        self.sections: list[str] = []
        self.figures = 0
        self.tables = 0
        self.missing: list[str] = []

    # ------------------------------------------------------------------ pieces
    def section(self, anchor: str, title: str, intro: str) -> None:
        if self.sections:
            self.parts.append("</section>")
        self.sections.append(anchor)
        self.parts.append(
            f'<section id="{anchor}"><h2>{html.escape(title)}</h2><p class="cap">{html.escape(intro)}</p>'
        )

    def heading(self, text: str) -> None:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")

    def not_run(self, rel: str, why: str = "") -> None:
        self.missing.append(rel)
        stage = rel.split("/", 1)[0]
        note = why or f"stage <code>{html.escape(stage)}</code> was not run in this profile"
        self.parts.append(
            f'<p class="notrun">not run: <code>reports/{html.escape(rel)}</code> is missing ({note}).</p>'
        )

    def figure(self, rel: str, caption: str) -> None:
        p = self.root / rel
        if not p.is_file():
            self.not_run(rel)
            return
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        self.figures += 1
        self.parts.append(
            f'<figure><img alt="{html.escape(rel)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)} <code>reports/{html.escape(rel)}</code></figcaption></figure>"
        )

    def table(self, header: list[str], rows: list[list], caption: str, source: str = "") -> None:
        self.tables += 1
        shown = rows[:MAX_TABLE_ROWS]
        more = f" (first {MAX_TABLE_ROWS} of {len(rows)} rows)" if len(rows) > MAX_TABLE_ROWS else ""
        src = f" <code>reports/{html.escape(source)}</code>" if source else ""
        head = "".join(f"<th>{_cell(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in shown)
        self.parts.append(f'<p class="cap">{html.escape(caption)}{more}{src}</p><table><tr>{head}</tr>{body}</table>')

    def csv_table(self, rel: str, caption: str, columns: list[str] | None = None) -> None:
        p = self.root / rel
        if not p.is_file():
            self.not_run(rel)
            return
        with p.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            self.not_run(rel, "the file is empty")
            return
        header, body = rows[0], rows[1:]
        if columns:
            idx = [header.index(c) for c in columns if c in header]
            header, body = [header[i] for i in idx], [[r[i] for i in idx] for r in body]
        self.table(header, body, caption, rel)

    def markdown(self, rel: str, caption: str) -> None:
        p = self.root / rel
        if not p.is_file():
            self.not_run(rel)
            return
        self.tables += 1
        self.parts.append(f'<p class="cap">{html.escape(caption)} <code>reports/{html.escape(rel)}</code></p>')
        self.parts.append(markdown_to_html(p.read_text()))

    def metrics(self, rel: str) -> dict | None:
        p = self.root / rel
        if not p.is_file():
            self.not_run(rel)
            return None
        try:
            return json.loads(p.read_text())
        except ValueError:
            self.not_run(rel, "the file is not valid JSON")
            return None

    def key_values(self, metrics: dict, keys: list[tuple[str, str]], caption: str, source: str) -> None:
        rows = [[label, _get(metrics, key)] for key, label in keys if _get(metrics, key) is not None]
        if rows:
            self.table(["metric", "value"], rows, caption, source)

    def render(self, title: str, subtitle: str) -> str:
        if self.sections:
            self.parts.append("</section>")
        nav = "".join(f'<a href="#{a}">{html.escape(a.replace("-", " "))}</a>' for a in self.sections)
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
            f"<main><nav>{nav}</nav>{''.join(self.parts)}</main></body></html>\n"
        )


def _get(d: dict, dotted: str):
    cur = d
    for k in dotted.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, bool) or v is None:
        return html.escape(str(v))
    return html.escape(str(v))


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def markdown_to_html(text: str) -> str:
    """Pipe tables and paragraphs of the markdown the stages write (``**bold**`` kept), nothing else."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0

    def inline(s: str) -> str:
        return _BOLD.sub(r"<b>\1</b>", html.escape(s.strip()))

    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i].strip().strip("|"))
                i += 1
            cells = [[c for c in row.split("|")] for row in block]
            rows = [r for r in cells if not all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in r)]
            if rows:
                head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
                body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
                out.append(f"<table><tr>{head}</tr>{body}</table>")
            continue
        if line:
            out.append(f'<p class="cap">{inline(line.lstrip("#"))}</p>')
        i += 1
    return "".join(out)


def checkpoint_tags(root: Path) -> list[str]:
    """Evaluated checkpoints (``reports/eval_<tag>/``) in reading order: scratch, base, warm-up, then the rest."""
    tags = [p.name.removeprefix("eval_") for p in root.glob("eval_*") if p.is_dir()]
    known = [t for t in CHECKPOINT_ORDER if t in tags]

    def key(t: str) -> tuple:  # round_2 before round_10
        head, _, num = t.rpartition("_")
        return (head, int(num), "") if num.isdigit() else (t, -1, t)

    return known + sorted((t for t in tags if t not in CHECKPOINT_ORDER), key=key)


def _accuracy_rows(root: Path, tags: list[str]) -> tuple[list[str], list[list]]:
    """(part, group) x checkpoint accuracy from each ``eval_<tag>/errors.csv``."""
    table: dict[tuple[str, str], dict[str, str]] = {}
    for tag in tags:
        p = root / f"eval_{tag}" / "errors.csv"
        if not p.is_file():
            continue
        with p.open(newline="") as f:
            for r in csv.DictReader(f):
                table.setdefault((r.get("part", ""), r.get("group", "")), {})[tag] = r.get("accuracy", "")
    header = ["part", "dialog type / BFCL category", *tags]
    rows = [[part, group, *(vals.get(t, "–") for t in tags)] for (part, group), vals in table.items()]
    return header, rows


# --------------------------------------------------------------------------- sections
def _pool(b: _Builder) -> None:
    b.section("api-pool", "API pool (synthesize_apis)", "The synthetic tools every later stage draws from.")
    m = b.metrics("synthesize_apis/metrics.json")
    if m is not None:
        keys = [
            ("n_apis", "unique valid APIs"),
            ("n_domains", "domains"),
            ("n_categories", "categories"),
            ("n_functionalities_covered", "functionalities covered"),
        ]
        b.key_values(m, keys, "Pool size and coverage of the API context tree.", "synthesize_apis/metrics.json")
    b.figure(
        "synthesize_apis/diversity.png",
        "Diversity of the pool: APIs per domain, parameter types, nesting "
        "depth and the share of constrained parameters.",
    )


def _dialogs(b: _Builder) -> None:
    b.section("dialogs", "Dialogs (generate_dialogs) and the split", "Multi-agent dialogs made from the pool.")
    b.figure(
        "generate_dialogs/dialogs.png",
        "Dialogs per type, rejected attempts by reason, and the complexity levels generated.",
    )
    b.csv_table("generate_dialogs/types.csv", "Dialogs per type.")
    m = b.metrics("split/metrics.json")
    if m is not None:
        keys = [
            ("n_train", "train dialogs"),
            ("n_test", "test dialogs"),
            ("n_train_apis", "train APIs"),
            ("n_test_apis", "test APIs"),
            ("api_overlap", "APIs in both (must be 0)"),
        ]
        b.key_values(m, keys, "The split by API: no test API is seen in training.", "split/metrics.json")


def _verify(b: _Builder) -> None:
    b.section("verification", "Verification (verify)", "The dual-layer check: rules (GX suites), then the model layer.")
    m = b.metrics("verify/metrics.json")
    if m is not None:
        keys = [
            ("n_dialogs", "dialogs in"),
            ("n_verified", "verified"),
            ("n_rejected", "rejected"),
            ("pass_rate.rules", "pass rate, rule layer"),
            ("pass_rate.model", "pass rate, model layer"),
            ("pass_rate.final", "pass rate, final"),
            ("judge_encoder", "model layer's encoder (embedded judge)"),
            ("timings.model", "seconds, model layer"),
            ("timings.total", "seconds, whole stage"),
        ]
        b.key_values(m, keys, "Pass rates of each layer on the generated dialogs.", "verify/metrics.json")
    b.figure(
        "verify/pass_rates.png",
        "Pass rate per layer next to ToolACE's reported rates, and per check, on the generated dialogs.",
    )
    b.csv_table("verify/check_pass_rates.csv", "Pass rate per check, with its ToolACE family.")
    b.figure("verify/recall.png", "Recall per injected error kind and layer: how often a known corruption is caught.")
    inj = b.metrics("verify/injection.json")
    if inj is not None and isinstance(inj.get("kinds"), dict):
        rows = [
            [k, v.get("layer"), v.get("n"), v.get("recall_rules"), v.get("recall_model"), v.get("recall_any")]
            for k, v in inj["kinds"].items()
        ]
        b.table(
            ["error kind", "layer", "n", "recall rules", "recall model", "recall any"],
            rows,
            f"Recall per injected error kind; false rejects on clean rows: {json.dumps(inj.get('false_reject', {}))}.",
            "verify/injection.json",
        )


def _training(b: _Builder) -> None:
    b.section(
        "training",
        "Difficulty and warm-up SFT (score_difficulty, warmup_sft)",
        "iTool's easy-to-hard warm-up on the base policy.",
    )
    b.figure(
        "score_difficulty/difficulty_hist.png",
        "The combined difficulty score (target NLL under the base model with "
        "structural complexity) by easy / medium / hard bucket, and the target perplexity per dialog type.",
    )
    m = b.metrics("score_difficulty/metrics.json")
    if m is not None:
        rows = [
            [k, v.get("n"), v.get("mean_nll"), v.get("mean_structural")]
            for k, v in (m.get("buckets") or {}).items()
            if isinstance(v, dict)
        ]
        if rows:
            b.table(
                ["bucket", "dialogs", "mean NLL", "mean structural"],
                rows,
                "Difficulty buckets.",
                "score_difficulty/metrics.json",
            )
    b.figure("warmup_sft/loss.png", "Training and held-out loss of the warm-up, step by step.")
    m = b.metrics("warmup_sft/metrics.json")
    if m is not None:
        keys = [
            ("train_steps", "steps"),
            ("train_examples", "examples"),
            ("train_loss_mean", "mean train loss"),
            ("final_eval_loss", "final eval loss"),
            ("trainable_params", "trainable parameters"),
            ("train_tokens_per_s", "tokens / s"),
            ("train_seconds", "seconds"),
        ]
        b.key_values(m, keys, "Warm-up run summary.", "warmup_sft/metrics.json")


def _evaluation(b: _Builder) -> None:
    b.section(
        "evaluation",
        "Evaluation of every checkpoint (eval_*)",
        "Held-out synthetic dialogs (unseen APIs) per dialog type, and BFCL categories.",
    )
    tags = checkpoint_tags(b.root)
    if not tags:
        b.not_run("eval_base/errors.csv", "no eval_* stage was run in this profile")
        return
    header, rows = _accuracy_rows(b.root, tags)
    if rows:
        b.table(header, rows, "Accuracy per dialog type (synthetic) and per BFCL category, one column per checkpoint.")
    for tag in tags:
        b.heading(f"checkpoint: {tag}")
        m = b.metrics(f"eval_{tag}/metrics.json")
        if m is not None:
            keys = [
                ("synthetic.accuracy", "synthetic accuracy"),
                ("synthetic.partial_credit", "synthetic partial credit"),
                ("synthetic.unparsable_rate", "synthetic unparsable"),
                ("bfcl.accuracy", "BFCL accuracy"),
                ("bfcl.category_mean_accuracy", "BFCL mean over categories"),
            ]
            b.key_values(m, keys, f"Headline numbers of `{tag}`.", f"eval_{tag}/metrics.json")
        b.figure(
            f"eval_{tag}/accuracy.png",
            f"Accuracy of `{tag}` per dialog type and BFCL category, and the share of each error type per group.",
        )
        b.csv_table(f"eval_{tag}/errors.csv", f"Error types of `{tag}` per group (counts of each failure).")


def _ablations(b: _Builder) -> None:
    b.section("ablations", "Ablations (flows.sweep)", "Variants of the pipeline side by side, when the sweep was run.")
    sweep = b.root / "sweep"
    tables = sorted(sweep.glob("*.md")) if sweep.is_dir() else []
    plots = sorted(sweep.glob("*.png")) if sweep.is_dir() else []
    if not tables and not plots:
        b.not_run("sweep/", "the ablation sweep (<code>python -m flows.sweep</code>) has not written a comparison")
        return
    for t in tables:
        b.markdown(f"sweep/{t.name}", "Ablation comparison: one row per variant.")
    for p in plots:
        b.figure(f"sweep/{p.name}", "Ablation comparison: the headline metric of each variant.")


def _adnt(b: _Builder) -> None:
    b.section("adnt", "Domain adaptation (ADNT)", "Multi-source adaptation: ADNT against baselines and its ablations.")
    b.figure(
        "adnt_data/gap_matrix.png",
        "Domain gap between the digit domains: accuracy of a source-only model "
        "trained on one domain and tested on another.",
    )
    b.markdown("adnt_report/table.md", "Leave-one-domain-out accuracy (mean ± std over seeds) per method and target.")
    b.figure(
        "adnt_report/accuracy.png",
        "Target accuracy per held-out domain and method (mean ± std over seeds), ADNT beside its baselines and ablations.",
    )
    b.figure(
        "adnt_report/pseudo_labels.png",
        "Coverage and precision of ADNT's adaptive pseudo-labels per target domain over training steps.",
    )
    b.markdown("adnt_dialogs/table.md", "ADNT on dialog embeddings: accuracy per held-out API domain.")


SECTIONS: list[Callable[[_Builder], None]] = [_pool, _dialogs, _verify, _training, _evaluation, _ablations, _adnt]


def build_report(reports_dir: str | Path, title: str = "toolkiln pipeline report", subtitle: str = "") -> Page:
    """Read ``reports_dir`` (one folder per stage) and return the page and what it holds."""
    b = _Builder(Path(reports_dir))
    for add in SECTIONS:
        add(b)
    page = b.render(title, subtitle or f"Built from {Path(reports_dir).name}/ — every plot and table the stages wrote.")
    return Page(html=page, sections=b.sections, figures=b.figures, tables=b.tables, missing=b.missing)


def external_urls(page: str) -> list[str]:
    """Any reference the page would fetch or link outside itself (must be empty: it opens from disk)."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page, flags=re.I)
    refs += re.findall(r"url\(([^)]+)\)", page, flags=re.I)
    refs += re.findall(r"@import", page, flags=re.I)
    return [r for r in refs if not r.startswith(("#", "data:"))]
