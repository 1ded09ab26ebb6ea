"""Run Great Expectations suites over polars frames; build data docs.

Two uses. :func:`run_suites` asserts a suite over a frame and keeps GX's batch
verdict (``SUMMARY``): the contract of an output such as ``verified.parquet``.
:func:`validate_rows` is the rule layer's engine: each suite runs over one
flattened table with ``result_format: COMPLETE``, and GX's own unexpected
indices come back per expectation, so the caller turns them into row-level
rejects named after the expectation. Suites are JSON in ``expectations/``;
thresholds are GX suite parameters (``{"$PARAMETER": name}``) filled from
``params.yaml``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # never phone home (offline, and not ours to share)

log = logging.getLogger(__name__)


@dataclass
class ExpectationOutcome:
    type: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    meta: dict = field(default_factory=dict)


@dataclass
class SuiteResult:
    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]
    evaluated_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "success": self.success,
            "evaluated_rows": self.evaluated_rows,
            "expectations": [o.__dict__ for o in self.outcomes],
        }


def load_suite_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read expectation suite: {exc}") from None
    if not isinstance(data, dict) or "expectations" not in data or "name" not in data:
        raise ValueError(f"{path}: an expectation suite needs 'name' and 'expectations'")
    return data


def ok_columns_required(suite: dict) -> list[str]:
    """Columns a suite's kwargs name (``column``, ``column_A/B``, ``column_list``), so callers fail early."""
    cols: list[str] = []
    for e in suite["expectations"]:
        kw = e.get("kwargs", {})
        for c in [kw.get("column"), kw.get("column_A"), kw.get("column_B"), *(kw.get("column_list") or [])]:
            if c and c not in cols:
                cols.append(c)
    return cols


def _quiet(ctx) -> None:
    """GX draws a progress bar per batch; in a stage log that is noise."""
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # older/newer GX without this knob: bars stay, nothing breaks
        log.debug("could not disable GX progress bars", exc_info=True)


@dataclass
class ExpectationRows:
    """One expectation's verdict over a table, with the table positions GX found unexpected."""

    type: str
    kwargs: dict
    meta: dict
    success: bool
    unexpected_index: list[int]
    unexpected_count: int
    element_count: int | None


@dataclass
class RowResult:
    """A suite's run over one table: per-expectation rows plus the batch summary (:meth:`to_dict`)."""

    suite: str
    success: bool
    evaluated_rows: int
    expectations: list[ExpectationRows]

    def to_dict(self) -> dict[str, Any]:
        total = self.evaluated_rows
        return {"suite": self.suite, "success": self.success, "evaluated_rows": total,
                "expectations": [{"type": e.type, "column": e.kwargs.get("column"), "success": e.success,
                                  "unexpected_count": e.unexpected_count,
                                  "unexpected_percent": (100.0 * e.unexpected_count / e.element_count)
                                  if e.element_count else None, "meta": e.meta} for e in self.expectations]}


def validate_rows(tables: dict[str, tuple[pl.DataFrame, dict]], *, parameters: dict[str, Any] | None = None,
                  data_docs_dir: str | Path | None = None) -> dict[str, RowResult]:
    """Run suite ``s`` over table ``t`` for every ``name -> (t, s)``; GX reports the unexpected rows.

    Tables go to pandas whole (a suite may name any column, in kwargs or a ``row_condition``) with a
    fresh ``RangeIndex``, so ``unexpected_index_list`` is a table position. ``data_docs_dir`` adds one
    data-docs site for all of them (then the context lives in a temporary folder, else in memory).
    """
    import great_expectations as gx

    parameters = dict(parameters or {})
    for name, (df, suite_json) in tables.items():
        missing = [p for p in suite_parameters(suite_json) if p not in parameters]
        if missing:
            raise ValueError(f"suite {suite_json.get('name', name)!r}: parameters {missing} have no value; "
                             f"given: {sorted(parameters)}")
        cols = [c for c in ok_columns_required(suite_json) if c not in df.columns]
        if cols:
            raise ValueError(f"suite {suite_json.get('name', name)!r}: columns {cols} are not in table {name!r} "
                             f"(have {df.columns})")
    root = Path(tempfile.mkdtemp(prefix="toolkiln-gx-")) if data_docs_dir else None
    try:
        ctx = gx.get_context(mode="file", project_root_dir=str(root)) if root else gx.get_context(mode="ephemeral")
        _quiet(ctx)
        source = ctx.data_sources.add_pandas("tables")
        out: dict[str, RowResult] = {}
        for name, (df, suite_json) in tables.items():
            if root:
                # GX 1.24's data-docs renderers format kwargs such as `mostly` before resolving a
                # {"$PARAMETER": ...} value (TypeError: dict * int, logged once per expectation); the docs get
                # the suite with its parameters filled in, validation is the same either way.
                suite_json = resolve_parameters(suite_json, parameters)
            suite = ctx.suites.add(gx.ExpectationSuite(**suite_json))
            batch_def = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_validation", data=batch_def,
                                                                        suite=suite))
            pdf = df.to_pandas()
            fmt = {"result_format": "COMPLETE", "include_unexpected_rows": False}
            if root:
                cp = ctx.checkpoints.add(gx.Checkpoint(
                    name=f"{name}_checkpoint", validation_definitions=[vd], result_format=fmt,
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")]))
                res = cp.run(batch_parameters={"dataframe": pdf}, expectation_parameters=parameters or None)
                vres = list(res.run_results.values())[0]
            else:
                vres = vd.run(batch_parameters={"dataframe": pdf}, expectation_parameters=parameters or None,
                              result_format=fmt)
            rows = []
            for r in vres.results:
                cfg = r.expectation_config
                if r.exception_info and r.exception_info.get("raised_exception"):
                    raise ValueError(f"suite {suite_json['name']!r}, {cfg.type} {cfg.kwargs}: GX raised "
                                     f"{r.exception_info.get('exception_message')}")
                idx = r.result.get("unexpected_index_list") or []
                idx = [int(i) if not isinstance(i, dict) else int(next(iter(i.values()))) for i in idx]
                rows.append(ExpectationRows(type=cfg.type, kwargs=dict(cfg.kwargs), meta=dict(cfg.meta or {}),
                                            success=bool(r.success), unexpected_index=idx,
                                            unexpected_count=int(r.result.get("unexpected_count") or 0),
                                            element_count=r.result.get("element_count")))
            out[name] = RowResult(suite=suite_json["name"], success=bool(vres.success), evaluated_rows=len(pdf),
                                  expectations=rows)
        if root:
            from toolkiln.io import atomic_dir

            with atomic_dir(data_docs_dir) as tmp:
                shutil.copytree(root / "gx" / "uncommitted" / "data_docs" / "local_site", tmp, dirs_exist_ok=True)
        return out
    finally:
        if root:
            shutil.rmtree(root, ignore_errors=True)


def resolve_parameters(suite: Any, parameters: dict[str, Any]) -> Any:
    """``suite`` with every ``{"$PARAMETER": name}`` replaced by ``parameters[name]`` (a new object)."""
    if isinstance(suite, dict):
        if set(suite) == {"$PARAMETER"} and suite["$PARAMETER"] in parameters:
            return parameters[suite["$PARAMETER"]]
        return {k: resolve_parameters(v, parameters) for k, v in suite.items()}
    if isinstance(suite, list):
        return [resolve_parameters(v, parameters) for v in suite]
    return suite


def suite_parameters(suite: Any) -> list[str]:
    """Names of the ``{"$PARAMETER": name}`` values in a suite (GX resolves them at run time), in order."""
    found: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if set(x) == {"$PARAMETER"} and isinstance(x["$PARAMETER"], str):
                if x["$PARAMETER"] not in found:
                    found.append(x["$PARAMETER"])
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(suite)
    return found


def run_suite(df: pl.DataFrame, suite_path: str | Path, *, data_docs_dir: str | Path | None = None,
              asset_name: str | None = None, parameters: dict[str, Any] | None = None) -> SuiteResult:
    """Validate ``df`` against the suite; optionally write GX data docs (HTML) to ``data_docs_dir``."""
    suite_json = load_suite_json(suite_path)
    name = asset_name or suite_json["name"]
    return run_suites({name: df}, suite_path, data_docs_dir=data_docs_dir, parameters=parameters)[name]


def run_suites(frames: dict[str, pl.DataFrame], suite_path: str | Path, *,
               data_docs_dir: str | Path | None = None, parameters: dict[str, Any] | None = None) -> dict[str, SuiteResult]:
    """Validate several frames (e.g. ``candidates`` and ``kept``) against one suite, with one data-docs site.

    ``parameters`` fill the suite's ``{"$PARAMETER": name}`` values (thresholds from
    params.yaml) through GX's own expectation parameters, so the suite file stays the
    single definition and the data docs show the values used.
    """
    import great_expectations as gx

    suite_json = load_suite_json(suite_path)
    parameters = dict(parameters or {})
    missing_params = [p for p in suite_parameters(suite_json) if p not in parameters]
    if missing_params:
        raise ValueError(f"{suite_path}: suite parameters {missing_params} have no value; "
                         f"given: {sorted(parameters)}")
    cols = ok_columns_required(suite_json)
    for asset_name, df in frames.items():
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{suite_path}: columns {missing} are not in frame {asset_name!r} (have {df.columns})")
    root = Path(tempfile.mkdtemp(prefix="toolkiln-gx-"))
    results: dict[str, SuiteResult] = {}
    try:
        ctx = gx.get_context(mode="file", project_root_dir=str(root))
        _quiet(ctx)
        suite = ctx.suites.add(gx.ExpectationSuite(**suite_json))
        source = ctx.data_sources.add_pandas("frames")
        for asset_name, df in frames.items():
            # Only the columns the suite looks at go to pandas: JSON payload columns would be copied for nothing.
            conds = " ".join(str(e.get("kwargs", {}).get("row_condition") or "") for e in suite_json["expectations"])
            pdf = df.select([c for c in df.columns if c in cols or (conds and c in conds)]).to_pandas()
            batch_def = source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("whole")
            vd = ctx.validation_definitions.add(
                gx.ValidationDefinition(name=f"{asset_name}_validation", data=batch_def, suite=suite))
            actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if data_docs_dir else []
            cp = ctx.checkpoints.add(gx.Checkpoint(name=f"{asset_name}_checkpoint", validation_definitions=[vd],
                                                   actions=actions, result_format={"result_format": "SUMMARY"}))
            res = cp.run(batch_parameters={"dataframe": pdf}, expectation_parameters=parameters or None)
            vres = list(res.run_results.values())[0]
            outcomes = []
            for r in vres.results:
                cfg = r.expectation_config
                outcomes.append(ExpectationOutcome(
                    type=cfg.type, column=cfg.kwargs.get("column"), success=bool(r.success),
                    unexpected_count=r.result.get("unexpected_count"),
                    unexpected_percent=r.result.get("unexpected_percent"), meta=dict(cfg.meta or {})))
            results[asset_name] = SuiteResult(suite=suite_json["name"], success=bool(res.success), outcomes=outcomes,
                                              evaluated_rows=len(pdf))
        if data_docs_dir:
            site = root / "gx" / "uncommitted" / "data_docs" / "local_site"
            from toolkiln.io import atomic_dir

            with atomic_dir(data_docs_dir) as tmp:
                shutil.copytree(site, tmp, dirs_exist_ok=True)
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)
