"""BFCL's official decoder and AST checker, loaded offline as an oracle (docs/architecture.md#evaluation).

``bfcl-eval`` is installed ``--no-deps`` (its full tree is ~6 GB). Its AST
checker module imports ``bfcl_eval.constants.model_config``, which imports every
provider SDK (anthropic, openai, google ...) only to look up one flag,
``underscore_to_dot``, for function names containing dots; its prompting decoder
lives in ``model_handler/utils.py``, which imports the tree-sitter Java/JS
parsers. Neither is needed for Python-syntax, prompt-based evaluation, so those
two imports are satisfied by small stand-ins while the real checker and decoder
modules load; the stand-ins are removed from ``sys.modules`` afterwards.

The oracle is for agreement tests and benchmarks only: its decoder ``eval``\\ s
parts of model output, so it must never see untrusted text. Our own
:mod:`toolkiln.callparse` never evaluates anything.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterator

# Any registered prompt-based model name works: with the stand-in config no name is rewritten.
ORACLE_MODEL_NAME = "toolkiln-oracle"


class _PromptModelConfig:
    underscore_to_dot = False  # prompt-based models see dotted names verbatim


class _ConfigMapping(dict):
    def __missing__(self, key: str) -> _PromptModelConfig:
        return _PromptModelConfig()


@contextlib.contextmanager
def _stand_ins(modules: dict[str, dict[str, Any]]) -> Iterator[None]:
    added = []
    for name, attrs in modules.items():
        try:
            importlib.import_module(name)
            continue  # the real module imports fine here: use it
        except ImportError:
            pass
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def _unavailable(*_a: Any, **_k: Any) -> Any:
    raise RuntimeError("Java/JavaScript decoding needs tree-sitter, which the --no-deps install of bfcl-eval lacks")


@dataclass(frozen=True)
class Oracle:
    ast_checker: Callable[..., dict]
    decode_ast: Callable[[str], list]  # BFCL's default_decode_ast_prompting (Python return format)
    is_empty_output: Callable[[Any], bool]
    is_function_calling_format_output: Callable[[Any], bool]
    python: Any  # Language.PYTHON

    def check(self, decoded: list[dict], ground_truth: list[dict], functions: list[dict], category: str) -> dict:
        """The official verdict on an already-decoded output ``[{name: {arg: value}}]``."""
        if "relevance" in category:
            call = not self.is_empty_output(decoded)
            ok = (not call) if "irrelevance" in category else call
            return {"valid": ok, "error_type": None if ok else f"{category}:call={call}"}
        if not self.is_function_calling_format_output(decoded):
            return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format"}
        return self.ast_checker(functions, decoded, ground_truth, self.python, category, ORACLE_MODEL_NAME)

    def check_text(self, text: str, ground_truth: list[dict], functions: list[dict], category: str) -> dict:
        """The official verdict on raw model text, as BFCL's eval runner computes it for prompt-based models."""
        try:
            decoded = self.decode_ast(text)
        except Exception as exc:  # noqa: BLE001 - BFCL counts any decoder failure as "no call" / "decoder failed"
            if "irrelevance" in category:
                return {"valid": True, "error_type": None}
            return {"valid": False, "error_type": f"ast_decoder:decoder_failed: {type(exc).__name__}"}
        return self.check(decoded, ground_truth, functions, category)


@functools.lru_cache(maxsize=1)
def load_oracle() -> Oracle:
    """Import BFCL's checker and decoder with stand-ins for their heavy, unused imports."""
    stand_ins = {
        "bfcl_eval.constants.model_config": {"MODEL_CONFIG_MAPPING": _ConfigMapping()},
        "bfcl_eval.model_handler.parser.java_parser": {"parse_java_function_call": _unavailable},
        "bfcl_eval.model_handler.parser.js_parser": {"parse_javascript_function_call": _unavailable},
    }
    try:
        with _stand_ins(stand_ins):
            checker = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
            handler_utils = importlib.import_module("bfcl_eval.model_handler.utils")
            bfcl_utils = importlib.import_module("bfcl_eval.utils")
            enums = importlib.import_module("bfcl_eval.constants.enums")
    except ImportError as exc:
        raise RuntimeError(f"cannot load the official BFCL checker ({exc}); install it with "
                           "`pip install --no-deps bfcl-eval==2026.3.23` (plus `tenacity`)") from exc
    return Oracle(ast_checker=checker.ast_checker, decode_ast=handler_utils.default_decode_ast_prompting,
                  is_empty_output=bfcl_utils.is_empty_output,
                  is_function_calling_format_output=bfcl_utils.is_function_calling_format_output,
                  python=enums.Language.PYTHON)


def to_bfcl_calls(calls: list[dict] | None) -> list[dict]:
    """``[{"name", "arguments"}]`` -> BFCL's decoded form ``[{name: arguments}]``."""
    return [{c["name"]: dict(c["arguments"])} for c in (calls or [])]
