"""The generate_dialogs and split stage scripts end to end on the fixture pool (tracking off, tiny sizes)."""

import importlib.util
import json

import polars as pl
import pytest
import yaml

from toolkiln.config import ParamsError, load_params, read_yaml_mapping


def _stage(repo_root, name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", repo_root / "stages" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def params(repo_root, tmp_path):
    data = read_yaml_mapping(repo_root / "params.yaml")
    data["tracking"]["enabled"] = False
    data["dialogs"].update(n_dialogs=80, batch_size=32)
    data["split"]["test_fraction"] = 0.2
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_generate_then_split(repo_root, tmp_path, params, pool_frame):
    pool = tmp_path / "pool.parquet"
    pool_frame.write_parquet(pool)
    d = tmp_path / "out"
    _stage(repo_root, "generate_dialogs").main([
        "--params", str(params), "--pool", str(pool), "--dialogs", str(d / "dialogs.parquet"),
        "--rejects", str(d / "rejects.parquet"), "--trace", str(d / "trace.jsonl"), "--metrics", str(d / "m.json"),
        "--types-plot", str(d / "types.csv"), "--plot", str(d / "dialogs.png")])
    dialogs = pl.read_parquet(d / "dialogs.parquet")
    metrics = json.loads((d / "m.json").read_text())
    assert dialogs.height == 80 == metrics["n_dialogs"] and metrics["pool_apis"] == 21
    assert metrics["n_attempts"] == 80 + pl.read_parquet(d / "rejects.parquet").height
    assert (d / "dialogs.png").stat().st_size > 0 and (d / "trace.jsonl").read_text() == ""
    assert pl.read_csv(d / "types.csv")["dialogs"].sum() == 80

    _stage(repo_root, "split").main([
        "--params", str(params), "--verified", str(d / "dialogs.parquet"), "--train", str(d / "train.parquet"),
        "--test", str(d / "test.parquet"), "--exports", str(d / "exports"), "--metrics", str(d / "split.json")])
    split = json.loads((d / "split.json").read_text())
    assert split["n_train"] + split["n_test"] == 80 and split["api_overlap"] == 0
    for part in ("train", "test"):
        for f in ("sharegpt.json", "openai.jsonl", "bfcl_question.jsonl", "bfcl_possible_answer.jsonl"):
            assert (d / "exports" / part / f).exists()
    assert not list((d).glob(".*tmp*"))  # atomic writes leave no temporaries


def test_missing_pool_is_a_clear_error(repo_root, tmp_path, params):
    with pytest.raises(SystemExit, match="cannot use the API pool"):
        _stage(repo_root, "generate_dialogs").main([
            "--params", str(params), "--pool", str(tmp_path / "nope.parquet"), "--dialogs", str(tmp_path / "d.parquet"),
            "--rejects", str(tmp_path / "r.parquet"), "--trace", str(tmp_path / "t.jsonl"), "--metrics",
            str(tmp_path / "m.json"), "--types-plot", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "p.png")])


def test_params_errors_name_the_value(repo_root, tmp_path):
    data = read_yaml_mapping(repo_root / "params.yaml")
    data["dialogs"]["type_mix"] = {"single": 1.0, "chitchat": 0.5}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=r"dialogs.type_mix.*chitchat"):
        load_params(p)
    data["dialogs"]["type_mix"] = {"single": 1.0}
    data["dialogs"]["distractors"] = [4, 2]
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=r"dialogs.distractors.*\[4, 2\]"):
        load_params(p)
    data["dialogs"]["distractors"] = [2, 4]
    data["split"] = {"test_fraction": 1.5}
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=r"split.test_fraction.*1.5"):
        load_params(p)


def _generate(repo_root, params, pool, d):
    return _stage(repo_root, "generate_dialogs").main([
        "--params", str(params), "--pool", str(pool), "--dialogs", str(d / "dialogs.parquet"),
        "--rejects", str(d / "rejects.parquet"), "--trace", str(d / "trace.jsonl"), "--metrics", str(d / "m.json"),
        "--types-plot", str(d / "types.csv"), "--plot", str(d / "dialogs.png")])


def test_dialog_shortfall_exits_nonzero(repo_root, tmp_path, params, pool_frame):
    data = read_yaml_mapping(params)
    data["dialogs"].update(n_dialogs=30, max_attempts_factor=1.0)
    data["dialogs"]["voting"].update(min_agreement=1.0, noise={"distractor": 0.5, "drop_optional": 0.0,
                                                                "perturb_value": 0.0})
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    pool = tmp_path / "pool.parquet"
    pool_frame.write_parquet(pool)
    with pytest.raises(SystemExit) as exc:
        _generate(repo_root, params, pool, tmp_path / "out")
    assert "generate_dialogs: target missed:" in str(exc.value.code) and "below dialogs.n_dialogs = 30" in str(exc.value.code)
    metrics = json.loads((tmp_path / "out/m.json").read_text())  # written first, for the post-mortem
    assert metrics["n_dialogs"] < 30 and metrics["n_attempts"] == 30


def test_dead_endpoint_opens_the_breaker_and_fails_the_stage(repo_root, tmp_path, params, pool_frame):
    import socket

    with socket.socket() as s:  # a port nobody listens on: every request is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = read_yaml_mapping(params)
    data["dialogs"]["n_dialogs"] = 20
    data["llm"].update(backend="openai", base_url=f"http://127.0.0.1:{port}/v1", model="m")
    data["runtime"]["llm"].update(concurrency=1, max_retries=0, breaker_failures=3, breaker_cooldown_s=3600,
                                  cache_dir="")
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    pool = tmp_path / "pool.parquet"
    pool_frame.write_parquet(pool)
    from toolkiln.llm import EndpointOutage

    with pytest.raises(EndpointOutage) as exc:
        _generate(repo_root, params, pool, tmp_path / "out")
    assert exc.value.code == 3 and "short-circuited by the circuit breaker" in str(exc.value)
    rows = [json.loads(line) for line in (tmp_path / "out/trace.jsonl").read_text().splitlines()]
    sent = [r for r in rows if not r["error"].startswith("circuit_open")]
    assert len(sent) == 3 and all("connection error" in r["error"] for r in sent)  # then nothing was sent
    assert len(rows) > len(sent)


@pytest.mark.slow
def test_interrupted_llm_stage_resumes_from_its_cache(repo_root, tmp_path, params, pool_frame):
    """generate_dialogs with LLM agents, SIGKILLed mid-run, then rerun: nothing answered before is asked again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from toolkiln.testing.scripted import ScriptedLLM
    from toolkiln.testing.chatserver import ChatTestServer, FaultPlan

    pool = tmp_path / "pool.parquet"
    pool_frame.write_parquet(pool)
    cache, d = tmp_path / "cache", tmp_path / "out"
    with ChatTestServer(responder=ScriptedLLM(), faults=FaultPlan(latency_s=0.02)) as srv:
        data = read_yaml_mapping(params)
        data["dialogs"].update(n_dialogs=24, batch_size=8)
        data["llm"].update(backend="openai", base_url=srv.base_url, model="scripted")
        data["runtime"]["llm"].update(cache_dir=str(cache), concurrency=4)
        params.write_text(yaml.safe_dump(data, sort_keys=False))
        cmd = [sys.executable, str(repo_root / "stages/generate_dialogs.py"), "--params", str(params), "--pool",
               str(pool), "--dialogs", str(d / "dialogs.parquet"), "--rejects", str(d / "rejects.parquet"),
               "--trace", str(d / "trace.jsonl"), "--metrics", str(d / "m.json"), "--types-plot",
               str(d / "types.csv"), "--plot", str(d / "dialogs.png")]
        env = {**os.environ, "PYTHONPATH": f"{repo_root / 'src'}:{repo_root}"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 600
            while len(list(cache.glob("*/*.json"))) < 20 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, "the first run ended before it was interrupted"
        answered = {p.stem for p in cache.glob("*/*.json")}
        assert not (d / "dialogs.parquet").exists() and len(answered) >= 20
        srv.reset_stats()
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        reasked = set(srv.counts)
    assert again.returncode == 0, again.stderr[-3000:]
    assert reasked and reasked.isdisjoint(answered)  # resumed: only what was never answered went out again
    assert pl.read_parquet(d / "dialogs.parquet").height == 24
