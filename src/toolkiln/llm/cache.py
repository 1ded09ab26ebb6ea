"""On-disk response cache and raw-traffic trace shared by the chat backends (docs/architecture.md (#backends, #conventions, #reliability)).

The cache stores one JSON file per request key in sharded sub-folders
(``<dir>/<key[:2]>/<key>.json``), each written atomically as soon as its answer
arrives, so an interrupted stage resumes without re-asking anything already
answered. Only successful answers are cached: a failure is retried on the next
run. A corrupt or foreign file reads as a miss (and is overwritten), never as an
error.

The trace is a JSONL file of ``{key, tag, request, response | error, attempts,
latency_s, cached}`` rows appended as results complete, so a stage keeps the raw
LLM traffic next to its outputs. Neither ever sees request headers, so the API
key cannot reach them.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from toolkiln.io import atomic_write_json

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


class ResponseCache:
    """Successful chat answers keyed by :meth:`ChatRequest.key`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored entry (``texts``, ``usage``, ``response``) or None on a miss."""
        p = self.path(key)
        try:
            with open(p, encoding="utf-8") as fh:
                entry = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cache entry %s (%s)", p, exc)
            return None
        if not (isinstance(entry, dict) and entry.get("key") == key and entry.get("format") == CACHE_FORMAT
                and isinstance(entry.get("texts"), list) and all(isinstance(t, str) for t in entry["texts"])):
            log.warning("ignoring malformed cache entry %s", p)
            return None
        return entry

    def put(self, key: str, *, request: dict, texts: list[str], usage: dict | None, response: Any) -> None:
        atomic_write_json(self.path(key), {"format": CACHE_FORMAT, "key": key, "request": request,
                                           "texts": texts, "usage": usage, "response": response}, indent=None)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0


class TraceWriter:
    """Appends one JSON line per answered request; thread-safe; flushed per line.

    A new writer starts the file afresh unless ``append`` is set, so a stage's trace
    holds that run's traffic only (cache hits included, marked ``cached``).
    """

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        if not append:
            self.path.write_text("", encoding="utf-8")

    def write(self, row: dict) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
