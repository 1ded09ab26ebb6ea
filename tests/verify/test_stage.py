"""The verify stage as dvc.yaml declares it: run its command in a scratch repo, with real GX and MLflow."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import polars as pl
import pytest
import yaml

from toolkiln.embed import embed_texts
from toolkiln.schema import api_from_dict, apis_frame
from toolkiln.synth.pool import embeddings_frame
from toolkiln.testing.examples import APIS
from toolkiln.verify.inject import inject
from toolkiln.verify.model import api_text


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["static", "minilm"])
def test_verify_stage_outputs_and_tracking(tmp_path, repo_root, clean, encoder, request):
    r = tmp_path / "repo"
    if encoder == "static":  # the distill_encoder stage's output, where dvc.yaml's verify command reads it
        shutil.copytree(request.getfixturevalue("static_encoder"), r / "checkpoints" / "static_encoder")
    (r / "stages").mkdir(parents=True)
    shutil.copy(repo_root / "stages" / "verify.py", r / "stages" / "verify.py")
    shutil.copytree(repo_root / "expectations", r / "expectations")
    (r / "data").mkdir()
    bad, replaced = inject(clean, per_kind=1, seed=0, kinds=("unknown_argument", "orphan_tool_response"))
    dialogs = pl.concat([clean.filter(~pl.col("id").is_in(list(replaced))), bad.drop("kind", "source_id")])
    dialogs.write_parquet(r / "data" / "dialogs.parquet")
    apis_frame([api_from_dict(a) for a in APIS]).write_parquet(r / "data" / "api_pool.parquet")
    # the pool's embeddings as synthesize_apis hands them on: the judge embeds only what is not among them
    texts = [api_text(a) for a in APIS]
    embeddings_frame([a["name"] for a in APIS], texts, embed_texts(texts)).write_parquet(
        r / "data" / "api_embeddings.parquet"
    )
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["tracking"].update(tracking_uri=f"sqlite:///{r / 'mlflow.db'}", artifact_dir=str(r / "mlartifacts"))
    params["verify"]["injection"].update(per_kind=3)
    params["verify"]["model"].update(judge="embedded", encoder=encoder)
    (r / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["verify"]
    cmd = shlex.split(stage["cmd"])
    assert cmd[0] == "python"
    env = {**os.environ, "TOOLKILN_PIPELINE_ID": "test-verify"}
    out = subprocess.run([sys.executable, *cmd[1:]], cwd=r, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    for o in stage["outs"]:
        path = o if isinstance(o, str) else next(iter(o))
        assert (r / path).exists(), path
    verified = pl.read_parquet(r / "data" / "verified.parquet")
    rejects = pl.read_parquet(r / "data" / "verify_rejects.parquet")
    assert set(rejects["id"]) == set(bad["id"]) and verified.height == dialogs.height - bad.height
    metrics = json.loads((r / "reports/verify/metrics.json").read_text())
    # the pool's MiniLM vectors serve a MiniLM judge; the static judge embeds the offered APIs itself
    assert metrics["preloaded_api_embeddings"] == (len(APIS) if encoder == "minilm" else 0)
    assert metrics["judge_encoder"] == encoder
    assert metrics["toolace_pass_rate"] == {"rules": 0.679, "model": 0.911, "final": 0.618}
    assert metrics["injection"]["bars"]["rule_recall_ok"] and metrics["gx"]["verified_dialogs"]["success"]
    assert (r / "reports/verify/data_docs/dialogs_rules/index.html").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{r / 'mlflow.db'}")
    exp = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`toolkiln.stage` = 'verify'")
    assert len(runs) == 1
    logged = runs[0].data.metrics
    assert logged["pass_rate.rules"] == metrics["pass_rate"]["rules"]
    assert "injection.recall_rules.unknown_argument" in logged
