"""A scripted "LLM" for the chat test server: plays the three dialog agents by reading their prompts.

The project's one allowed stand-in for a remote model is a real HTTP server
(:class:`toolkiln.testing.chatserver.ChatTestServer`) with a *responder*. This
responder answers the prompts of :mod:`toolkiln.dialogs.llm_agents` the way a
competent model would, so tests and the throughput benchmark exercise the LLM
path end to end over HTTP:

* user prompts get an utterance that says every value of the brief (and it
  remembers the brief under that utterance, as the assistant will need it);
* assistant prompts get the calls the remembered brief implies (a question when
  a value was omitted, a refusal when no tool fits, a short summary after
  results), with a thought covering every argument;
* tool prompts get a result drawn from the ``returns`` schema with the
  ``must_include`` fields planted.

``malformed`` makes that share of replies unusable (prose, broken JSON, JSON
without the required fields), chosen by a hash of the request so reruns see the
same faults. Never used by the stage itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from typing import Any

from toolkiln.dialogs.llm_agents import ASSISTANT_SYSTEM, TOOL_SYSTEM, USER_SYSTEM
from toolkiln.dialogs.toolsim import get_path, simulate_result

MALFORMED = ("Sure! Here is the answer you asked for.", '{"utterance": "unterminated', '{"nothing": "useful"}',
             "```json\n{\"tool_calls\": [{\"arguments\": {}}]}\n```")


def _plain(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(_plain(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_plain(x)}" for k, x in v.items())
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class ScriptedLLM:
    """Callable responder for :class:`~toolkiln.testing.chatserver.ChatTestServer` (see module doc)."""

    def __init__(self, malformed: float = 0.0, seed: int = 0):
        self.malformed = malformed
        self.seed = seed
        self.memory: dict[str, dict] = {}  # utterance -> brief
        self.lock = threading.Lock()

    def _bad(self, body: dict, i: int = 0) -> str | None:
        if self.malformed <= 0:
            return None
        h = hashlib.sha256(f"{self.seed}:{i}:{json.dumps(body['messages'], sort_keys=True)}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2 ** 64
        return MALFORMED[h[8] % len(MALFORMED)] if u < self.malformed else None

    def __call__(self, body: dict) -> str | list[str]:
        msgs = body["messages"]
        system, payload = msgs[0]["content"], json.loads(msgs[-1]["content"])
        n = int(body.get("n") or 1)
        if system == USER_SYSTEM:
            return self._bad(body) or self.user(payload)
        if system == ASSISTANT_SYSTEM:
            good = self.assistant(payload)
            return [self._bad(body, i) or good for i in range(n)]
        if system == TOOL_SYSTEM:
            return self._bad(body) or self.tool(payload)
        return json.dumps({"error": "unknown agent"})

    # -- user --------------------------------------------------------------
    def user(self, p: dict) -> str:
        brief = p["brief"]
        instr = p["instruction"]
        if instr.startswith("Answer"):
            text = f"It is {_plain(brief['answer']['value'])}."
        elif brief.get("kind") == "follow_up":
            (task,) = brief["tasks"]
            text = "What about " + ", ".join(_plain(m["value"]) for m in task["mention"].values()) + "?"
        else:
            parts = []
            for t in brief["tasks"]:
                vals = [f"{k} {_plain(m['value'])}" for k, m in t.get("mention", {}).items()]
                vals += [f"{k} from my profile" for k in t.get("refer_to_profile", {})]
                parts.append(f"{t['intent']}" + (f" with {', '.join(vals)}" if vals else ""))
            text = "Please " + "; then ".join(parts) + "."
        with self.lock:
            text = f"{text} (ref {len(self.memory)})"
            self.memory[text] = {"_answer": True} if instr.startswith("Answer") else brief
        return json.dumps({"utterance": text})

    # -- assistant -----------------------------------------------------------
    def _brief_for(self, conv: list[dict]) -> tuple[dict | None, int]:
        for i in range(len(conv) - 1, -1, -1):
            if conv[i]["role"] == "user" and conv[i]["content"] in self.memory:
                b = self.memory[conv[i]["content"]]
                if b.get("_answer"):
                    continue
                return b, i
        return None, -1

    def assistant(self, p: dict) -> str:
        conv = p["conversation"]
        if p.get("instruction", "").startswith("The function results"):
            return json.dumps({"content": "Here are the results you asked for."})
        brief, at = self._brief_for(conv)
        if brief is None:
            return json.dumps({"content": "I am not sure what you mean."})
        after = conv[at + 1:]
        if brief.get("no_tool"):
            return json.dumps({"content": "Sorry, none of the available tools can do that."})
        answered = brief.get("omit") and any(m["role"] == "user" for m in after)
        if brief.get("omit") and not answered:
            return json.dumps({"content": f"Which {brief['omit'][0].replace('_', ' ')} should I use?"})
        stages = [[t for t in brief["tasks"] if not t.get("from_previous_result")],
                  [t for t in brief["tasks"] if t.get("from_previous_result")]]
        stages = [s for s in stages if s]
        done = sum(1 for m in after if m["role"] == "assistant" and m.get("tool_calls"))
        if done >= len(stages):
            return json.dumps({"content": "Done."})
        prev = self._previous_values(conv, at)
        calls = []
        for t in stages[done]:
            args = {k: m["value"] for k, m in t.get("mention", {}).items()}
            args.update({k: v["value"] for k, v in t.get("refer_to_profile", {}).items()})
            for k in t.get("same_as_before", []):
                if k in prev:
                    args[k] = prev[k]
            if brief.get("answer"):
                args[brief["answer"]["param"]] = brief["answer"]["value"]
            link = t.get("link")
            if link:
                tool_msgs = [m for m in after if m["role"] == "tool"]
                if tool_msgs:
                    args[link["param"]] = get_path(json.loads(tool_msgs[-1]["content"]), link["field"])
            calls.append({"name": t["api"], "arguments": args})
        keyed = {(f"{i}.{k}" if len(calls) > 1 else k): "user" for i, c in enumerate(calls) for k in c["arguments"]}
        return json.dumps({"thought": {"tool": ", ".join(c["name"] for c in calls), "why": "the user asked for it",
                                       "arguments": keyed}, "tool_calls": calls})

    def _previous_values(self, conv: list[dict], at: int) -> dict:
        for m in reversed(conv[:at]):
            if m["role"] == "assistant" and m.get("tool_calls"):
                return dict(m["tool_calls"][0]["arguments"])
        return {}

    # -- tool ----------------------------------------------------------------
    def tool(self, p: dict) -> str:
        rng = random.Random(json.dumps(p["call"], sort_keys=True, default=str))
        res = simulate_result(p["api"], p["call"].get("arguments") or {}, rng, list(p.get("must_include", {}).items()))
        return json.dumps(res)
