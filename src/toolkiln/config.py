"""``params.yaml`` -> typed configs, failing fast with precise messages.

``load_params(path)`` returns a :class:`Params`: one attribute per stage section.
Any problem (unreadable YAML, an unknown key, a wrong type, an out-of-range value)
raises :class:`ParamsError` *before* a stage does any work, and the message names
the key path, the value received and what was expected, e.g.::

    params.yaml: synth.n_apis: got -5 (int); expected a value >= 1

Profiles (``profiles/*.yaml``) are partial overrides deep-merged over a params
file; the smoke profile used by the test-suite is one of them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from toolkiln.adapt.config import ADNTConfig
from toolkiln.configbase import Section
from toolkiln.dialogs.config import DialogsConfig, SplitConfig
from toolkiln.evaluate.config import EvaluateConfig
from toolkiln.itool.config import IToolConfig, RoundsConfig
from toolkiln.llm.config import LLMConfig, LLMRuntime
from toolkiln.policy.config import DifficultyConfig, PolicyConfig, SFTConfig
from toolkiln.synth.config import SynthConfig
from toolkiln.verify.config import VerifyConfig


class TrackingConfig(Section):
    enabled: bool = Field(True, description="Log params/metrics/artifacts to MLflow.")
    tracking_uri: str = Field("sqlite:///mlflow.db", description="MLflow backend store URI.")
    artifact_dir: str = Field("mlartifacts", description="Folder (relative to the repo) for MLflow artifacts.")
    experiment: str = Field("toolkiln", description="MLflow experiment name.")


class DaskRuntime(Section):
    address: str = Field(
        "",
        description="Scheduler of an existing Dask cluster (tcp://host:8786), whose workers see "
        "the same files and environment; '' = a local cluster of runtime.workers processes.",
    )


class RuntimeConfig(Section):
    """``runtime:``: how fast and where the work runs, never what it produces.

    No stage lists this section in ``dvc.yaml``, so changing any of it reruns nothing; a
    setting belongs here only if the outputs are the same whatever its value (the test
    suite checks that no stage lists it and that no output-changing read hides here).
    """

    workers: int = Field(
        2,
        ge=1,
        le=256,
        description="Processes the ADNT protocol's runs are spread over, and the size of the local Dask "
        "cluster under executor: dask (one torch thread each; every job is seeded on its own, so results do "
        "not depend on it).",
    )
    executor: Literal["local", "dask"] = Field(
        "local",
        description="local: the sharded work runs in runtime.workers local processes; dask: each shard is a "
        "Prefect task on a Dask cluster (prefect-dask's DaskTaskRunner), merged in a fixed order, identical output.",
    )
    shard_size: int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description="Dialogs per shard of the verification model layer (every row is judged on its own and "
        "every text embedded once before sharding, so the verdicts do not depend on it).",
    )
    dask: DaskRuntime = DaskRuntime()
    llm: LLMRuntime = LLMRuntime()
    checkpoint_steps: int = Field(
        20,
        ge=0,
        description="warmup_sft: a resumable checkpoint (weights, optimizer, scheduler, RNG, data position) every "
        "this many optimizer steps, the last one kept (0 = none). A crashed run started again resumes from it and "
        "ends on the same weights as an uninterrupted one (tests/policy/test_base.py).",
    )
    resume_dir: str = Field(
        ".toolkiln/resume",
        description="Where resumable training checkpoints live, one subfolder per run named by a fingerprint of "
        "its inputs and settings (outside DVC's outputs, which DVC removes before a stage reruns).",
    )


class Params(Section):
    seed: int = Field(0, description="Global seed; every stage derives its own seeds from it.")
    tracking: TrackingConfig = TrackingConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    llm: LLMConfig = LLMConfig()
    synth: SynthConfig = SynthConfig()
    dialogs: DialogsConfig = DialogsConfig()
    verify: VerifyConfig = VerifyConfig()
    split: SplitConfig = SplitConfig()
    difficulty: DifficultyConfig = DifficultyConfig()
    policy: PolicyConfig = PolicyConfig()
    sft: SFTConfig = SFTConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    itool: IToolConfig = IToolConfig()
    rounds: RoundsConfig = RoundsConfig()
    adnt: ADNTConfig = ADNTConfig()


class ParamsError(ValueError):
    """A params file is malformed; the message says where and what was expected."""


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        kind = e["type"]
        if kind == "extra_forbidden":
            lines.append(
                f"{source}: {loc}: unknown key (got {_describe(e['input'])}); "
                "remove it or check its spelling against params.yaml's documented keys"
            )
        elif kind == "missing":
            lines.append(f"{source}: {loc}: missing required key")
        else:
            msg = e["msg"]
            msg = msg[0].lower() + msg[1:] if msg else msg
            lines.append(
                f"{source}: {loc}: got {_describe(e.get('input'))}; expected {msg.removeprefix('input should be ')}"
            )
    return "\n".join(lines)


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (override wins)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml_mapping(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections; got {_describe(data)}")
    return data


def params_from_dict(data: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(data)
    except ValidationError as err:
        raise ParamsError(format_validation_error(err, source)) from None


def load_params(path: str | Path = "params.yaml", profiles: tuple[str | Path, ...] = ()) -> Params:
    """Load and validate a params file, optionally deep-merging profile overrides."""
    data = read_yaml_mapping(path)
    for prof in profiles:
        data = deep_merge(data, read_yaml_mapping(prof))
    return params_from_dict(data, source=str(path))


def main(argv: list[str] | None = None) -> int:
    """``python -m toolkiln.config check|merge``: validate a file or write a merged profile."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m toolkiln.config")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate a params file")
    c.add_argument("path", nargs="?", default="params.yaml")
    m = sub.add_parser("merge", help="deep-merge profiles over a params file and write the result")
    m.add_argument("base")
    m.add_argument("profiles", nargs="+")
    m.add_argument("-o", "--out", required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "check":
            load_params(args.path)
            print(f"{args.path}: ok")
        else:
            data = read_yaml_mapping(args.base)
            for p in args.profiles:
                data = deep_merge(data, read_yaml_mapping(p))
            params_from_dict(data, source=args.out)
            from toolkiln.io import atomic_write_text

            atomic_write_text(args.out, yaml.safe_dump(data, sort_keys=False))
    except ParamsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
