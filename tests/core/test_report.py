"""The report page built from tiny fixture reports: every section, inlined images, "not run" lines for what a
profile skipped, no external URL (it opens from disk), and the stage logs it to MLflow."""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml

from toolkiln.report import build_report, checkpoint_tags, external_urls, markdown_to_html


def _png(path: Path) -> None:
    """A valid 2x2 RGB PNG (no plotting library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def _fixture(root: Path) -> list[str]:
    pngs = [
        "synthesize_apis/diversity.png",
        "verify/pass_rates.png",
        "verify/recall.png",
        "score_difficulty/difficulty_hist.png",
        "eval_base/accuracy.png",
        "eval_warmup/accuracy.png",
        "adnt_report/accuracy.png",
    ]
    for p in pngs:
        _png(root / p)
    _write(root, "synthesize_apis/metrics.json", json.dumps({"n_apis": 123, "n_domains": 4}))
    _write(root, "verify/metrics.json", json.dumps({"n_dialogs": 10, "pass_rate": {"rules": 0.9, "final": 0.8}}))
    _write(root, "verify/check_pass_rates.csv", "check,family,pass_rate\nok_call_name,executability,0.97\n")
    _write(
        root,
        "verify/injection.json",
        json.dumps(
            {
                "false_reject": {"final": 0.01},
                "kinds": {
                    "wrong_function": {
                        "layer": "rule",
                        "n": 5,
                        "recall_rules": 1.0,
                        "recall_model": 0.4,
                        "recall_any": 1.0,
                    }
                },
            }
        ),
    )
    for tag, acc in (("warmup", "0.2500"), ("base", "0.8500")):
        _write(
            root,
            f"eval_{tag}/errors.csv",
            f"part,group,n,accuracy,unparsable\nsynthetic,clarification,4,{acc},0\nbfcl,irrelevance,2,0.5000,1\n",
        )
        _write(root, f"eval_{tag}/metrics.json", json.dumps({"synthetic": {"accuracy": float(acc)}}))
    _write(
        root,
        "adnt_report/table.md",
        "| method | → mnist | **avg** |\n|---|---:|---:|\n| ADNT | **95.0 ± 1.0** | 68.2 |\n",
    )
    return pngs


def test_page_holds_every_section_inlines_images_and_marks_missing_inputs(tmp_path):
    pngs = _fixture(tmp_path)
    page = build_report(tmp_path)
    assert page.sections == ["api-pool", "dialogs", "verification", "training", "evaluation", "ablations", "adnt"]
    for anchor in page.sections:
        assert f'<section id="{anchor}">' in page.html
    assert page.figures == len(pngs) and page.html.count('src="data:image/png;base64,') == len(pngs)
    assert external_urls(page.html) == []
    # stages this "profile" did not run are visible lines, not errors
    for rel in ("warmup_sft/loss.png", "generate_dialogs/dialogs.png", "adnt_dialogs/table.md", "sweep/"):
        assert rel in page.missing
        assert f"not run: <code>reports/{rel}</code>" in page.html
    for rel in pngs:
        assert rel not in page.missing
    # one accuracy column per checkpoint, base before warm-up; the ADNT markdown becomes a table
    assert checkpoint_tags(tmp_path) == ["base", "warmup"]
    assert "<th>base</th><th>warmup</th>" in page.html
    assert "<td>clarification</td><td>0.8500</td><td>0.2500</td>" in page.html
    assert "<td><b>95.0 ± 1.0</b></td>" in page.html
    assert "<td>wrong_function</td>" in page.html and "<td>123</td>" in page.html


def test_empty_reports_folder_gives_a_page_of_not_run_lines(tmp_path):
    page = build_report(tmp_path / "nothing")
    assert page.figures == 0 and len(page.sections) == 7
    assert page.html.count('class="notrun"') == len(page.missing) >= 10


def test_external_urls_are_found():
    assert external_urls('<img src="https://x/a.png"><a href="#top">') == ["https://x/a.png"]
    assert external_urls("<style>a{background:url(http://x/y.png)}</style>") == ["http://x/y.png"]
    assert external_urls('<img src="data:image/png;base64,AAAA">') == []


def test_markdown_tables_and_paragraphs():
    out = markdown_to_html("| a | b |\n|---|--:|\n| 1 | **2** |\n\nMajority <5%\n")
    assert (
        out == "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td><b>2</b></td></tr></table>"
        '<p class="cap">Majority &lt;5%</p>'
    )


@pytest.mark.slow
def test_stage_writes_the_page_and_logs_it_to_mlflow(tmp_path, repo_root):
    from mlflow.tracking import MlflowClient

    _fixture(tmp_path / "reports")
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params["tracking"].update(tracking_uri=uri, artifact_dir=str(tmp_path / "art"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "reports/report/index.html"
    proc = subprocess.run(
        [
            sys.executable,
            str(repo_root / "stages/report.py"),
            "--params",
            str(tmp_path / "params.yaml"),
            "--reports",
            str(tmp_path / "reports"),
            "--out",
            str(out),
            "--metrics",
            str(tmp_path / "reports/report/metrics.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "TOOLKILN_PIPELINE_ID": "report-test"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text().startswith("<!DOCTYPE html>")
    metrics = json.loads((tmp_path / "reports/report/metrics.json").read_text())
    assert metrics["figures"] == 7 and metrics["sections"] == 7 and "warmup_sft/loss.png" in metrics["missing"]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(params["tracking"]["experiment"])
    run = client.search_runs([exp.experiment_id], filter_string="tags.`toolkiln.stage` = 'report'")[0]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["index.html"]
    assert run.data.metrics["figures"] == 7


def test_rounds_come_after_the_warmup_in_numeric_order(tmp_path):
    for tag in ("round_10", "warmup", "round_2", "lora", "round_1", "base"):
        (tmp_path / f"eval_{tag}").mkdir()
    assert checkpoint_tags(tmp_path) == ["base", "warmup", "lora", "round_1", "round_2", "round_10"]
