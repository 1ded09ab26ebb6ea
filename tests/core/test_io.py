"""Atomic writes: a writer that dies leaves neither a partial file nor temp litter."""

import os
import signal
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from toolkiln.io import atomic_dir, atomic_write, atomic_write_json, atomic_write_parquet, read_json


def test_failed_write_keeps_old_content(tmp_path):
    p = tmp_path / "out.json"
    atomic_write_json(p, {"v": 1})

    def boom(tmp):
        tmp.write_text('{"v": 2, "partial"')
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert read_json(p) == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_parquet_roundtrip(tmp_path):
    df = pl.DataFrame({"a": [1, 2], "b": [["x"], []]})
    atomic_write_parquet(tmp_path / "d.parquet", df)
    assert pl.read_parquet(tmp_path / "d.parquet").equals(df)


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as t:
        (t / "a.txt").write_text("1")

    def fail_halfway() -> None:
        with atomic_dir(target) as t:
            (t / "b.txt").write_text("half")
            raise ValueError("half-written")

    with pytest.raises(ValueError, match="half-written"):
        fail_halfway()
    assert sorted(os.listdir(target)) == ["a.txt"]
    with atomic_dir(target) as t:
        (t / "c.txt").write_text("2")
    assert sorted(os.listdir(target)) == ["c.txt"]
    assert [p for p in os.listdir(tmp_path) if p != "ckpt"] == []


def test_killed_process_leaves_no_artifact(tmp_path):
    """SIGKILL in the middle of a write: the final path never appears."""
    target = tmp_path / "big.parquet"
    code = textwrap.dedent(f"""
        import os, signal, polars as pl
        from toolkiln.io import atomic_write
        def write(tmp):
            pl.DataFrame({{"x": list(range(1000))}}).write_parquet(tmp)
            os.kill(os.getpid(), signal.SIGKILL)  # dies after writing the temp file, before the rename
        atomic_write({str(target)!r}, write)
    """)
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
