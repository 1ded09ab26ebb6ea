"""Step-level MCTS over call fragments (iTool arXiv 2501.09766 §3.2; docs/architecture.md#rounds).

The answer to a prompt is a call list (``[f(a=1), g(b="x")]``) or a text reply. The search
treats it as a sequence of *fragments*: a continuation is cut at the first ``(``, ``, ``,
``=`` or ``. `` (rounded up to the end of the token that contains it, so fragments are whole
tokens and a child's prefix is exactly the tokens the policy sampled). A node is a prefix
of fragments; the root is the empty answer.

One iteration:

* **select** — from the root, follow the child maximising PUCT
  ``Q + c * P * sqrt(N_parent) / (1 + N_child)`` with ``P`` the policy prior (siblings'
  exp(mean token log-prob), normalised) until an unexpanded node;
* **expand** — sample ``width`` continuations of the node's prefix *to the end of the call
  list* in one batched call (:meth:`StepPolicy.sample`); each sample's first fragment is a
  child (equal fragments merge) and its remainder is that child's rollout, so expansion and
  rollout cost one generate;
* **evaluate** — the rollout's text is parsed (:mod:`toolkiln.callparse`, literals only) and
  scored against the gold calls by :func:`call_reward`;
* **backup** — visits and value sums along the path to the root.

A node at the depth limit is not expanded; selecting it runs one more rollout from it.

**Tool-choice openings** (``mcts.root_openings`` = k > 0): sampled siblings of a weak policy
mostly pick the same tool, so their values tie and no pair passes the gap filter. The
root is then also expanded with the k call openings the policy ranks highest among those
of the prompt's offered tools (``[`` + comment line + ``name(`` as the checkpoint writes
calls; :func:`toolkiln.policy.render.call_openings`), each a child with its own rollout,
whose prior is the policy's mean log-prob of the opening. Right and wrong tools then sit
side by side with values of their own, and the tool choice — the warm-up's most frequent
error — becomes a step the pairs can teach.

**Reward, in [-1, 1]**: ``2 * partial_credit - 1`` where ``partial_credit``
(:func:`toolkiln.evaluate.ast_match.partial_credit`) grades function names, argument names,
argument values and the call count in [0, 1]; an unparsable output scores -1 when calls are
expected. When the gold answer is text (no call), a text reply (:func:`toolkiln.callparse.is_text_reply`)
or an explicitly empty call list scores 1 and anything else -1: a call, and also a call attempt that does not
parse. (BFCL's irrelevance rule counts an undecodable output as "no call"; as a *reward* that made broken
call lists the chosen side of text-target pairs.) The pair filter ``pairs.min_chosen`` (-0.3) is on this scale.

The policy is a small protocol (:class:`StepPolicy`), so tests drive the search with a
scripted policy whose right and wrong fragments are known; :class:`HFStepPolicy` is the
real one: sibling samples share one batched ``generate`` that starts from the prompt's
KV cache (computed once per prompt) extended by the node's prefix.

**Lockstep search of several prompts** (:func:`search_many`, ``mcts.lockstep``): the trees
of up to ``lockstep`` prompts take their iterations together; each iteration selects one
node per tree and every tree's expansion (``width`` siblings) or rollout goes into ONE
batch (:meth:`HFStepPolicy.sample_many`), whose rows start from their own prompt's KV
cache, left-padded to a common length. A decode step of the 135M model on one CPU thread
costs ~0.2 s for 3 rows and ~0.33 s for 24 (mostly reading the weights), so the search's
price per rollout falls with the number of trees in step. Each tree's logic — selection,
expansion, backup — is exactly the single-prompt search's; only the draws differ.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from toolkiln.callparse import is_text_reply, parse_calls
from toolkiln.evaluate.ast_match import partial_credit
from toolkiln.itool.config import MCTSConfig

DELIMITERS = ("(", ", ", "=", ". ")


@dataclass(frozen=True)
class Piece:
    """One sampled token: its text, its id (None for a scripted policy) and its log-prob under the policy."""

    text: str
    token: int | None = None
    logprob: float = 0.0


class StepPolicy(Protocol):
    """What the search needs from a policy."""

    forward_passes: int  # model forward calls so far (a cost counter for the benchmark)

    def sample(self, prompt: str, prefix: Sequence[Piece], n: int) -> list[list[Piece]]:
        """``n`` sampled continuations of ``prompt`` + ``prefix`` up to the end of the answer."""
        ...

    def force(self, prompt: str, prefix: Sequence[Piece], texts: Sequence[str]) -> list[list[Piece]]:
        """Each of ``texts`` as pieces continuing ``prompt`` + ``prefix``, with the policy's log-probs (no sampling):
        how the search puts given steps, such as every offered tool's call opening, into the tree."""
        ...


Request = tuple[str, Sequence[Piece], int]  # (prompt, prefix, n): n continuations of prompt + prefix


def sample_many(policy: StepPolicy, requests: Sequence[Request]) -> list[list[list[Piece]]]:
    """Every request's samples, in one batch where the policy can (``sample_many``), else one call each."""
    if not requests:
        return []
    many = getattr(policy, "sample_many", None)
    if many is not None:
        return many(requests)
    return [policy.sample(prompt, prefix, n) for prompt, prefix, n in requests]


# -- reward -----------------------------------------------------------------------------------------------------------


def call_reward(text: str, gold_calls: list[dict]) -> float:
    """AST partial credit of an output against the gold calls, mapped to [-1, 1] (module docstring)."""
    parsed = parse_calls(text, strict=False)
    if not gold_calls:
        abstained = parsed.calls == [] or (parsed.calls is None and not parsed.refused and is_text_reply(text))
        return 1.0 if abstained else -1.0
    if parsed.calls is None:
        return -1.0
    return 2.0 * partial_credit(parsed.calls, gold_calls) - 1.0


# -- fragments --------------------------------------------------------------------------------------------------------


def first_fragment(pieces: Sequence[Piece], min_chars: int = 2) -> int:
    """How many pieces make the first fragment: up to the piece that completes the first delimiter.

    A delimiter counts once the text has at least ``min_chars`` characters up to its end,
    so a leading ``(`` or ``=`` does not make a one-character step. No delimiter: all pieces.
    """
    text = ""
    for i, p in enumerate(pieces):
        text += p.text
        for d in DELIMITERS:
            at = text.find(d)
            while at >= 0 and at + len(d) < min_chars:
                at = text.find(d, at + 1)
            if at >= 0:
                return i + 1
    return len(pieces)


def split_fragments(text: str, min_chars: int = 2) -> list[str]:
    """A whole text cut into fragments character-wise (what :func:`first_fragment` does on single characters)."""
    pieces = [Piece(ch) for ch in text]
    out = []
    while pieces:
        k = first_fragment(pieces, min_chars)
        out.append(_joined(pieces[:k]))
        pieces = pieces[k:]
    return out


# -- the tree ---------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    pieces: list[Piece]
    depth: int
    parent: "Node | None" = None
    children: list["Node"] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    prior: float = 1.0
    mean_logprob: float = 0.0
    terminal: bool = False
    expanded: bool = False
    best_reward: float = -math.inf
    best_rollout: str = ""  # the full answer text of this node's best rollout

    @property
    def text(self) -> str:
        return _joined(self.pieces)

    @property
    def value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> list["Node"]:
        out, n = [], self
        while n is not None:
            out.append(n)
            n = n.parent
        return out[::-1]

    def prefix_pieces(self) -> list[Piece]:
        return [p for n in self.path() for p in n.pieces]

    def prefix_text(self) -> str:
        return _joined(self.prefix_pieces())

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass
class SearchResult:
    root: Node
    rollouts: int
    forward_passes: int


def _puct(child: Node, parent_visits: int, c: float) -> float:
    return child.value + c * child.prior * math.sqrt(max(parent_visits, 1)) / (1 + child.visits)


def _select(root: Node, c: float) -> Node:
    node = root
    while node.expanded and node.children and not node.terminal:
        node = max(node.children, key=lambda ch: _puct(ch, node.visits, c))
    return node


def _backup(node: Node, reward: float) -> None:
    for n in node.path():
        n.visits += 1
        n.value_sum += reward


def _note_rollout(node: Node, text: str, reward: float) -> None:
    if reward > node.best_reward:
        node.best_reward, node.best_rollout = reward, text


def _set_priors(children: Sequence[Node]) -> None:
    if not children:
        return
    top = max(ch.mean_logprob for ch in children)
    w = [math.exp(ch.mean_logprob - top) for ch in children]
    total = sum(w)
    for ch, x in zip(children, w):
        ch.prior = x / total


def _expand_openings(
    policy: StepPolicy,
    prompt: str,
    root: Node,
    openings: list[str],
    k: int,
    gold_calls: list[dict],
    reward: Callable[[str, list[dict]], float],
) -> int:
    """The root's tool-choice children: the k openings with the highest mean log-prob, one rollout each."""
    forced = policy.force(prompt, [], openings)
    mean = [sum(p.logprob for p in f) / len(f) if f else -math.inf for f in forced]
    ranked = sorted((i for i in range(len(forced)) if forced[i]), key=lambda i: -mean[i])[:k]
    rollouts = sample_many(policy, [(prompt, forced[i], 1) for i in ranked])  # one batch for the k openings
    for i, (rest,) in zip(ranked, rollouts):
        child = next((ch for ch in root.children if ch.text == openings[i]), None)
        if child is None:
            child = Node(list(forced[i]), 1, root, mean_logprob=mean[i])
            root.children.append(child)
        _score_rollout(child, openings[i] + _joined(rest), gold_calls, reward)
    return len(ranked)


@dataclass(frozen=True)
class SearchJob:
    """One prompt to search: its rendered text, the gold calls the reward compares with, and the call openings
    of its offered tools (used when ``mcts.root_openings`` > 0)."""

    prompt: str
    gold_calls: list[dict]
    openings: Sequence[str] = ()


def search(
    policy: StepPolicy,
    prompt: str,
    gold_calls: list[dict],
    cfg: MCTSConfig,
    reward: Callable[[str, list[dict]], float] = call_reward,
    openings: Sequence[str] = (),
) -> SearchResult:
    """MCTS for one prompt (module docstring); returns the tree with visits and values.

    ``openings``: candidate first steps (the offered tools' call openings); the ``cfg.root_openings``
    the policy ranks highest become root children when the root is expanded.
    """
    (res,) = search_many(policy, [SearchJob(prompt, gold_calls, tuple(openings))], cfg, reward)
    return res


def search_many(
    policy: StepPolicy,
    jobs: Sequence[SearchJob],
    cfg: MCTSConfig,
    reward: Callable[[str, list[dict]], float] = call_reward,
) -> list[SearchResult]:
    """MCTS for several prompts in lockstep (module docstring): iteration ``i`` of every tree samples in one
    batch. Each result's ``forward_passes`` is the whole batch's (the trees share every forward pass)."""
    roots = [Node([], 0) for _ in jobs]
    rollouts = [0] * len(jobs)
    start = policy.forward_passes
    for _ in range(cfg.iterations):
        wanted: list[tuple[int, Node, str, bool]] = []  # (tree, node, its prefix text, expansion?)
        requests: list[Request] = []
        for t, (job, root) in enumerate(zip(jobs, roots)):
            node = _select(root, cfg.c)
            if node.terminal:
                _backup(node, node.best_reward)  # a finished answer: its score is known, nothing to sample
                continue
            prefix = node.prefix_pieces()
            base = _joined(prefix)
            if node.depth >= cfg.depth:  # at the depth limit: one more rollout from the node
                wanted.append((t, node, base, False))
                requests.append((job.prompt, prefix, 1))
                continue
            node.expanded = True
            if node is root and job.openings and cfg.root_openings:
                rollouts[t] += _expand_openings(
                    policy, job.prompt, root, list(job.openings), cfg.root_openings, job.gold_calls, reward
                )
            wanted.append((t, node, base, True))
            requests.append((job.prompt, prefix, cfg.width))
        for (t, node, base, expand), samples in zip(wanted, sample_many(policy, requests)):
            gold = jobs[t].gold_calls
            if not expand:
                (sample,) = samples
                rollouts[t] += _score_rollout(node, base + _joined(sample), gold, reward)
                continue
            for sample in samples:
                k = first_fragment(sample, cfg.min_fragment_chars)
                frag, rest = list(sample[:k]), sample[k:]
                ftext = _joined(frag)
                child = next((ch for ch in node.children if ch.text == ftext), None)
                if child is None:
                    lp = [p.logprob for p in frag]
                    child = Node(
                        frag, node.depth + 1, node, mean_logprob=sum(lp) / len(lp) if lp else 0.0, terminal=not rest
                    )
                    node.children.append(child)
                rollouts[t] += _score_rollout(child, base + _joined(sample), gold, reward)
            _set_priors(node.children)
    spent = policy.forward_passes - start
    return [SearchResult(root, n, spent) for root, n in zip(roots, rollouts)]


# -- policies ---------------------------------------------------------------------------------------------------------


class ScriptedPolicy:
    """A deterministic stand-in policy for tests: per prompt, a list of complete answers with probabilities.

    ``sample`` returns, for the ``i``-th draw at a prefix, the answers consistent with the
    prefix in turn (so ``width`` draws see every alternative once when there are at most
    ``width``), as character pieces whose log-prob is the answer's log-probability spread
    over its characters. One call counts as one forward pass.
    """

    def __init__(self, answers: dict[str, list[tuple[str, float]]]):
        self.answers = answers
        self.forward_passes = 0
        self.calls: list[tuple[str, str, int]] = []

    def sample(self, prompt: str, prefix: Sequence[Piece], n: int) -> list[list[Piece]]:
        self.forward_passes += 1
        done = _joined(prefix)
        self.calls.append((prompt, done, n))
        options = [(a, p) for a, p in self.answers[prompt] if a.startswith(done)]
        if not options:
            return [[] for _ in range(n)]
        out = []
        for i in range(n):
            answer, prob = options[i % len(options)]
            rest = answer[len(done) :]
            lp = math.log(prob) / max(len(answer), 1)
            out.append([Piece(ch, None, lp) for ch in rest])
        return out

    def force(self, prompt: str, prefix: Sequence[Piece], texts: Sequence[str]) -> list[list[Piece]]:
        """Each text as character pieces; its log-prob is that of the answers it starts (a floor when none)."""
        self.forward_passes += 1
        done = _joined(prefix)
        out = []
        for t in texts:
            mass = sum(p for a, p in self.answers[prompt] if a.startswith(done + t))
            lp = math.log(max(mass, 1e-6)) / max(len(t), 1)
            out.append([Piece(ch, None, lp) for ch in t])
        return out


class HFStepPolicy:
    """A local HF causal LM as a :class:`StepPolicy`: batched sibling sampling from a cached prefix.

    ``batched=True, prefix_cache=True`` (the search's mode): the prompt's KV cache is
    computed once and kept (``max_cached_prompts`` of them); a call copies it into every row of
    one batch — the ``n`` siblings of one request, or the rows of several prompts' requests
    (:meth:`sample_many`) — whose first forward feeds only each node's prefix tokens, and a
    decode loop of its own drops a row the step it ends. ``batched=False, prefix_cache=False``
    is the naive search the benchmark compares with: one plain ``generate`` per sequence over
    the whole prompt + prefix.
    Generation stops at the end of the call list (:class:`toolkiln.evaluate.harness.CallListEnd`,
    primed with the prefix) or at the end-of-turn token. Log-probs are the raw model's
    (before temperature and top-k), the prior the search uses.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        temperature: float = 1.5,
        top_k: int = 50,
        max_new_tokens: int = 96,
        device: str = "cpu",
        batched: bool = True,
        prefix_cache: bool = True,
        max_cached_prompts: int = 4,
    ) -> None:
        from toolkiln.evaluate.harness import CallListEnd

        self.model, self.tok, self.device = model.to(device).eval(), tokenizer, device
        self.temperature, self.top_k, self.max_new_tokens = temperature, top_k, max_new_tokens
        self.batched, self.prefix_cache = batched, prefix_cache
        self.stopper = CallListEnd(tokenizer)
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        self.forward_passes = 0
        self._active = False
        self.max_cached_prompts = max_cached_prompts
        self._ids: dict[str, list[int]] = {}
        self._cache: dict[str, object] = {}
        self._hook = model.register_forward_pre_hook(self._count)

    def close(self) -> None:
        """Stop counting the model's forward calls (the model outlives this policy)."""
        self._hook.remove()

    def _count(self, module, args) -> None:
        if self._active:  # several policies may wrap one model; each counts its own calls
            self.forward_passes += 1

    def prompt_ids(self, prompt: str) -> list[int]:
        if prompt not in self._ids:
            self._ids[prompt] = self.tok(prompt, add_special_tokens=False)["input_ids"]
        return self._ids[prompt]

    def _prompt_cache(self, prompt: str, ids: list[int]):
        import torch

        if prompt not in self._cache:
            if len(self._cache) >= self.max_cached_prompts:
                self._cache.pop(next(iter(self._cache)))
            with torch.no_grad():
                out = self.model(input_ids=torch.tensor([ids[:-1]], device=self.device), use_cache=True)
            self._cache[prompt] = out.cache
        return self._cache[prompt]

    def _stop_state(self, prefix_text: str) -> list:
        return self.stopper.new_state(prefix_text)

    def sample(self, prompt: str, prefix: Sequence[Piece], n: int) -> list[list[Piece]]:
        return self.sample_many([(prompt, prefix, n)])[0]

    def sample_many(self, requests: Sequence[Request]) -> list[list[list[Piece]]]:
        """Every request's ``n`` continuations. Batched: all rows of all requests in ONE decode loop
        (:meth:`_rows`); naive: one plain ``generate`` per sequence over the whole prompt + prefix."""
        out: list[list[list[Piece]]] = [[[] for _ in range(n)] for _, _, n in requests]
        # a prefix that already closed the call list has nothing left to write: no rows for it
        live = [i for i, (_, prefix, _) in enumerate(requests) if not self._stop_state(_joined(prefix))[4]]
        self._active = True
        try:
            if self.batched and live:
                rows = self._rows([requests[i] for i in live])
                at = 0
                for i in live:
                    out[i] = rows[at : at + requests[i][2]]
                    at += requests[i][2]
            elif live:
                for i in live:
                    prompt, prefix, n = requests[i]
                    out[i] = [row for _ in range(n) for row in self._generate(prompt, list(prefix), 1)]
        finally:
            self._active = False
        return out

    def _rows(self, requests: Sequence[Request]) -> list[list[Piece]]:
        """Sample the rows of ``requests`` (n rows each, in order) in one batch.

        Layout of a row, all rows one length: ``[pad…] prompt[:-1] | [pad…] prompt[-1] prefix``. The part left
        of ``|`` is the prompt's cached KV (each prompt's own cache, left-padded with zeros to the longest);
        the first forward feeds the part right of it. The attention mask hides every pad and positions count
        only real tokens, so a row's tokens sit at the positions its cache was computed with: its logits match
        its unpadded single-prompt run up to floating-point noise.
        """
        import torch
        from transformers import DynamicCache

        prompts = list(dict.fromkeys(prompt for prompt, _, _ in requests))
        self.max_cached_prompts = max(self.max_cached_prompts, len(prompts))  # no eviction within one batch
        pids = {prompt: self.prompt_ids(prompt) for prompt in prompts}
        use_cache = self.prefix_cache and all(len(ids) > 1 for ids in pids.values())
        heads, tails, states = [], [], []
        for prompt, prefix, n in requests:
            ids = pids[prompt]
            head, tail = (ids[:-1], ids[-1:]) if use_cache else ([], list(ids))
            tail = tail + [int(piece.token) for piece in prefix]
            for _ in range(n):
                heads.append((prompt, len(head)))
                tails.append(tail)
                states.append(self._stop_state(_joined(prefix)))
        hw, tw = max(h for _, h in heads), max(len(t) for t in tails)
        x = torch.full((len(tails), hw + tw), self.pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, ((prompt, h), tail) in enumerate(zip(heads, tails)):
            x[r, hw - h : hw] = torch.tensor(pids[prompt][:h])
            x[r, hw + tw - len(tail) :] = torch.tensor(tail)
            mask[r, hw - h : hw] = 1
            mask[r, hw + tw - len(tail) :] = 1
        cache = None
        if use_cache:
            caches = {prompt: self._prompt_cache(prompt, pids[prompt]) for prompt in prompts}
            cache = DynamicCache(config=self.model.config)
            for layer in range(len(caches[prompts[0]].layers)):
                keys, values = [], []
                for prompt, h in heads:
                    src = caches[prompt].layers[layer]  # (1, kv heads, h, dim) each
                    keys.append(torch.nn.functional.pad(src.keys, (0, 0, hw - h, 0)))
                    values.append(torch.nn.functional.pad(src.values, (0, 0, hw - h, 0)))
                cache.update(torch.cat(keys).to(self.device), torch.cat(values).to(self.device), layer)
        return self._sample_loop(x.to(self.device), mask.to(self.device), cache, states)

    def _sample_loop(self, x, mask, cache, states: list[list]) -> list[list[Piece]]:
        """Temperature + top-k sampling of every row to the end of its call list, EOS or ``max_new_tokens``,
        dropping each row from the batch (and from the KV cache) the step it ends.

        ``generate`` keeps a finished row in the batch, padded, until the longest row ends; at 20+ rows a
        CPU decode step costs in proportion to the rows, so carrying finished rows would cost what the
        batching saves. Tokens and raw log-probs (before temperature and top-k, the search's prior) as
        :meth:`_decode` reports them: a row ends before an EOS or pad token, after the token that closes its
        call list (:class:`toolkiln.evaluate.harness.CallListEnd`).
        """
        import torch

        from toolkiln.evaluate.harness import CallListEnd

        feed = CallListEnd.feed
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
        past = cache.get_seq_length() if cache is not None else 0
        inp, at = x[:, past:], pos[:, past:]
        last = pos[:, -1]
        rows: list[list[Piece]] = [[] for _ in range(x.shape[0])]
        alive = list(range(x.shape[0]))
        with torch.no_grad():
            for _ in range(self.max_new_tokens):
                out = self.model(input_ids=inp, attention_mask=mask, position_ids=at, cache=cache, use_cache=True)
                cache = out.cache
                logits = out.logits[:, -1, :].float()
                logp = logits.log_softmax(-1)
                scores = logits / self.temperature
                if self.top_k:
                    kth = scores.topk(min(self.top_k, scores.shape[-1])).values[:, -1:]
                    scores = scores.masked_fill(scores < kth, -math.inf)
                nxt = torch.multinomial(scores.softmax(-1), 1).squeeze(1)
                keep = []
                for j, r in enumerate(alive):
                    tid = int(nxt[j])
                    if tid == self.eos or tid == self.pad:
                        continue
                    text = self._text(tid)
                    rows[r].append(Piece(text, tid, float(logp[j, tid])))
                    feed(states[r], text)
                    if not states[r][4]:
                        keep.append(j)
                if not keep:
                    break
                if len(keep) < len(alive):
                    idx = torch.tensor(keep, device=nxt.device)
                    cache.batch_select_indices(idx)
                    mask, last, nxt = mask[idx], last[idx], nxt[idx]
                    alive = [alive[j] for j in keep]
                mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
                last = last + 1
                inp, at = nxt.unsqueeze(1), last.unsqueeze(1)
        return rows

    def _decode(self, x, mask, kwargs: dict) -> list[list[Piece]]:
        """Sample every row of ``x`` to the end of its call list; the new tokens with their raw log-probs."""
        import torch
        from transformers import StoppingCriteriaList

        with torch.no_grad():
            gen = self.model.generate(
                input_ids=x,
                attention_mask=mask,
                do_sample=True,
                temperature=self.temperature,
                top_k=self.top_k,  # 0 switches top-k off (None would fall back to the model default)
                top_p=None,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.pad,
                eos_token_id=self.eos,
                stopping_criteria=StoppingCriteriaList([self.stopper]),
                output_logits=True,
                return_dict_in_generate=True,
                **kwargs,
            )
        new = gen.sequences[:, x.shape[1] :]
        logp = torch.stack(gen.logits, dim=1).float().log_softmax(-1) if gen.logits else None
        out = []
        for r in range(x.shape[0]):
            row: list[Piece] = []
            for t in range(new.shape[1]):
                tid = int(new[r, t])
                if tid == self.eos or tid == self.pad:
                    break
                text = self._text(tid)
                # a row the stopper finished is padded from then on, so the loop ends there
                row.append(Piece(text, tid, float(logp[r, t, tid])))
            out.append(row)
        return out

    def _text(self, tid: int) -> str:
        return self.stopper.text[tid] if tid < len(self.stopper.text) else ""

    def force(self, prompt: str, prefix: Sequence[Piece], texts: Sequence[str]) -> list[list[Piece]]:
        """Tokenise each text after ``prompt`` + ``prefix`` and score it in one right-padded forward pass from the
        prompt's KV cache (raw log-probs, as :meth:`sample` reports them)."""
        from toolkiln.evaluate.harness import score_continuations

        if not texts:
            return []
        pids = self.prompt_ids(prompt)
        cached = len(pids) > 1
        # what the prompt's cache (pids[:-1]) has not seen yet
        head = (pids[-1:] if cached else pids) + [int(p.token) for p in prefix]
        toks = [self.tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        self._active = True
        try:
            cache = self._prompt_cache(prompt, pids) if cached else None
            logps = score_continuations(self.model, head, toks, self.pad, self.device, cache)
        finally:
            self._active = False
        return [[Piece(self._text(t), t, lp) for t, lp in zip(ts, lps)] for ts, lps in zip(toks, logps)]

    def _generate(self, prompt: str, prefix: list[Piece], n: int) -> list[list[Piece]]:
        """The naive side: a plain ``generate`` over prompt + prefix (with ``prefix_cache``, from a copy of the
        prompt's cache)."""
        import torch

        pids = self.prompt_ids(prompt)
        ids = pids + [int(p.token) for p in prefix]
        kwargs = {}
        if self.prefix_cache and len(pids) > 1:
            cache = copy.deepcopy(self._prompt_cache(prompt, pids))
            if n > 1:
                cache.batch_repeat_interleave(n)
            kwargs["cache"] = cache
        x = torch.tensor([ids] * n, device=self.device)
        self.stopper.state = [self._stop_state(_joined(prefix)) for _ in range(n)]
        return self._decode(x, torch.ones_like(x), kwargs)


def _score_rollout(node: Node, text: str, gold: list[dict], reward: Callable[[str, list[dict]], float]) -> int:
    """Score one finished rollout through ``node`` and back its reward up the tree; returns 1 (a rollout)."""
    r = reward(text, gold)
    _note_rollout(node, text, r)
    _backup(node, r)
    return 1


def _joined(prefix: Sequence[Piece]) -> str:
    return "".join(p.text for p in prefix)
