"""Exact candidate scoring for open models (`method=exact`): no sampling, no top-k cut-off.

For a question whose valid answers can be listed — option letters, every integer of a scale, every word of
the family's lists — the probability that the model's whole reply *is* a candidate is a product the model
computes directly:

    P(reply = c) = P(c_1 | prompt) · P(c_2 | prompt, c_1) · ... · P(end of turn | prompt, c)

with `c_1 ... c_k` the tokens of `c` (its own tokenization, as the model would emit it after the chat
template's generation prompt) and "end of turn" the token that stops the reply. The end token is what
separates "7" from "70" and "risk" from "risky", so multi-token candidates and numbers split into digits are
scored exactly. Each candidate is offered in a few surface forms ("Risky", "risky.", "(B)", "70.") that the
scorers read as the same answer; whatever probability none of them covers is reported as `other`
(`covered_mass` = 1 - other).

Two backends, chosen from the model Inspect already loaded (never a second copy):

* **hf/** — the provider's own model, tokenizer and chat template: the prompt is rendered and tokenized by
  the provider's code path (`hf_chat` + its tokenizer call), then ONE forward pass over the prompt and one
  batched pass over all candidates on top of its key/value cache (chunked for memory). LoRA adapters
  loaded through `hf/<adapter folder>` are part of the model and so of the scores.
* **vllm/** — vLLM's OpenAI-compatible server as Inspect started or found it (LoRA adapters routed by the
  adapter name, as for generation): the server renders and tokenizes the chat itself (`POST /tokenize` with
  `messages`), the candidates are tokenized by `/tokenize` too, and one `/v1/completions` request scores every
  `prompt + candidate + end` sequence through vLLM's `prompt_logprobs` (prefix caching keeps the shared
  prompt cheap). Written against vLLM's documented API; the tests exercise it on a fake server only.

The end-of-turn token follows the chat template: the tokens a closed assistant turn adds after the
generation prompt begin with it (`<|im_end|>` for ChatML, `<|eot_id|>` for Llama 3). On `hf/` every token
the provider stops generation on (`generation_config.eos_token_id`) counts as ending the reply.
"""

from __future__ import annotations

import copy
import inspect
import math
import sys
import weakref
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import anyio
from inspect_ai.model import ChatMessage, ChatMessageSystem, Model

from selfaware.banks import load_words

# Surface forms scored for each candidate: the scorers' parsers read all of them as the same answer.
LETTER_FORMS = ("{}", "{}.", "({})", "{})")
NUMBER_FORMS = ("{}", "{}.")
WORD_FORMS = ("{}", "{}.")  # each in lower case and Capitalised
# Candidate sequences per forward pass on hf/ (memory: the prompt's key/value cache is copied per row).
HF_CHUNK = 128
# Candidate sequences per /v1/completions request on vLLM.
VLLM_CHUNK = 256
TOKENIZE_CONCURRENCY = 32  # candidate texts tokenized at once on vLLM (first use of a candidate list only)
MAX_CANDIDATES = 20_000


class ExactScoringError(RuntimeError):
    """The model cannot be scored exactly (a provider without candidate scoring, an odd chat template)."""


@dataclass(frozen=True)
class ExactRead:
    """P(reply is exactly this text) for every candidate text, and what it took to compute."""

    probs: dict[str, float]
    backend: str  # "hf" | "vllm"
    prompt_tokens: int
    scored_tokens: int  # candidate (+ end) tokens scored on top of the prompt
    requests: int = 0  # HTTP requests (vLLM); forward passes are counted in `passes`
    passes: int = 0

    @property
    def covered_mass(self) -> float:
        return sum(self.probs.values())


# --- candidates per question type ---------------------------------------------------------------

def _forms(values: list[str], templates: tuple[str, ...], capitalise: bool = False) -> list[str]:
    out: dict[str, None] = {}
    for value in values:
        variants = (value.lower(), value[:1].upper() + value[1:].lower()) if capitalise else (value,)
        for v in variants:
            for t in templates:
                out[t.format(v)] = None
    return list(out)


def candidate_answers(metadata: dict[str, Any]) -> list[str] | None:
    """Every reply text that counts as a listed answer to this question, or None when answers cannot be
    listed (free-form text)."""
    qtype = metadata["question_type"]
    if qtype == "multiple_choice":
        return _forms(list(metadata["permutation"]), LETTER_FORMS)
    if qtype == "rating":
        scale = metadata["scale"]
        lo, hi = int(scale["min"]), int(scale["max"])
        if hi - lo + 1 > MAX_CANDIDATES // len(NUMBER_FORMS):
            raise ExactScoringError(f"the scale {lo}..{hi} has too many integers to score each one")
        return _forms([str(n) for n in range(lo, hi + 1)], NUMBER_FORMS)
    if qtype == "one_word" and metadata.get("words"):
        words = load_words(metadata["family"]).lists[metadata["words"]]
        return _forms([*words.behavior, *words.neutral, *words.opposite], WORD_FORMS, capitalise=True)
    return None


# --- the backends -----------------------------------------------------------------------------

class CandidateScorer(Protocol):
    backend: str

    async def score(self, messages: list[ChatMessage], answers: list[str]) -> ExactRead: ...


def _provider_messages(model: Model, messages: list[ChatMessage]) -> list[ChatMessage]:
    """The messages as `Model.generate` hands them to the provider: a configured system message first and
    consecutive messages collapsed where the provider asks for it. (Inspect does this in its private
    `_prepare_input`; the acceptance test checks the prompt length against a real generate call.)"""
    from inspect_ai.model._generate_config import active_generate_config
    from inspect_ai.model._model import collapse_consecutive_messages_for_api

    # As Model._resolve_config: the eval's config (--system-message) over the model's own.
    system = active_generate_config().system_message or model.config.system_message
    if system:
        messages = [ChatMessageSystem(content=system), *messages]
    return collapse_consecutive_messages_for_api(list(messages), model.api)


def _stop_ids(hf_model: Any, tokenizer: Any) -> list[int]:
    eos = hf_model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if not ids:
        raise ExactScoringError("the model has no end-of-sequence token: a reply's end cannot be scored")
    return ids


def candidate_logprobs(hf_model: Any, prompt: list[int], answers: list[list[int]], stop: list[int],
                       chunk: int = HF_CHUNK) -> tuple[list[float], int]:
    """log P(answer, then a stop token | prompt) for every tokenized answer; and the forward passes run.

    One pass over the prompt keeps its key/value cache; each chunk of answers runs as one right-padded batch
    on a copy of that cache. Padding sits after every real token, so causal attention never lets a real
    position see it and no mask is needed for it."""
    import torch

    if any(not a for a in answers):
        raise ExactScoringError("an empty candidate answer cannot be scored")
    device = hf_model.device
    stop_t = torch.tensor(stop, device=device)
    # transformers 5 renamed `past_key_values` to `cache` (input and output); older versions know only the former.
    kwarg = "cache" if "cache" in inspect.signature(hf_model.forward).parameters else "past_key_values"
    out: list[float] = []
    passes = 1
    with torch.inference_mode():
        head = hf_model(input_ids=torch.tensor([prompt], device=device), use_cache=True)
        first = torch.log_softmax(head.logits[0, -1].float(), dim=-1)
        cache = getattr(head, "cache", None)
        if cache is None:
            cache = head.past_key_values
        for start in range(0, len(answers), chunk):
            part = answers[start:start + chunk]
            rows, width = len(part), max(len(a) for a in part)
            ids = torch.zeros((rows, width), dtype=torch.long, device=device)
            for row, a in enumerate(part):
                ids[row, : len(a)] = torch.tensor(a, device=device)
            lengths = torch.tensor([len(a) for a in part], device=device)
            shared = copy.deepcopy(cache)
            shared.batch_repeat_interleave(rows)
            mask = torch.ones((rows, len(prompt) + width), dtype=torch.long, device=device)
            logits = hf_model(input_ids=ids, attention_mask=mask, use_cache=True, **{kwarg: shared}).logits.float()
            passes += 1
            logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # (rows, width, vocab)
            # Position j predicts token j + 1: the answer's later tokens, masked past each answer's end.
            later = logp[:, :-1].gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1) if width > 1 else logp[:, :0, 0]
            inside = torch.arange(1, width, device=device).unsqueeze(0) < lengths.unsqueeze(1)
            end = torch.logsumexp(logp[torch.arange(rows, device=device), lengths - 1][:, stop_t], dim=-1)
            total = first[ids[:, 0]] + torch.where(inside, later, 0.0).sum(dim=-1) + end
            out.extend(float(x) for x in total)
    return out, passes


class HFScorer:
    """Scores candidates with the model, tokenizer and chat template of Inspect's `hf/` provider."""

    backend = "hf"

    def __init__(self, model: Model) -> None:
        self._model = weakref.ref(model)
        self._lock = anyio.Lock()  # one scoring pass at a time: parallel passes only thrash the device

    def prompt_ids(self, messages: list[ChatMessage]) -> list[int]:
        """The token ids the provider feeds the model for these messages (its own template and call)."""
        model = self._require_model()
        api: Any = model.api
        chat = api.hf_chat(_provider_messages(model, messages), [])
        encoded = api.tokenizer([chat], return_tensors="pt", padding=True, **(api.tokenizer_call_args or {}))
        return [int(t) for t in encoded["input_ids"][0].tolist()]

    def answer_ids(self, text: str) -> list[int]:
        api: Any = self._require_model().api
        return list(api.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _require_model(self) -> Model:
        model = self._model()
        if model is None:
            raise ExactScoringError("the hf/ model was closed before it could be scored")
        return model

    async def score(self, messages: list[ChatMessage], answers: list[str]) -> ExactRead:
        api: Any = self._require_model().api
        prompt = self.prompt_ids(messages)
        tokenized = [self.answer_ids(a) for a in answers]
        stop = _stop_ids(api.model, api.tokenizer)
        async with self._lock:
            logps, passes = await anyio.to_thread.run_sync(
                partial(candidate_logprobs, api.model, prompt, tokenized, stop))
        probs = {a: math.exp(lp) for a, lp in zip(answers, logps)}
        return ExactRead(probs, "hf", prompt_tokens=len(prompt), scored_tokens=sum(len(t) + 1 for t in tokenized),
                         passes=passes)


def end_of_turn(prompt: list[int], closed: list[int], where: str) -> int:
    """The first token a closed (empty) assistant turn adds after the generation prompt."""
    if closed[: len(prompt)] != prompt or len(closed) == len(prompt):
        raise ExactScoringError(
            f"{where}: the chat template does not render a closed assistant turn as the generation prompt "
            f"followed by an end token, so the end of a reply cannot be located; use method=logprobs or sampling")
    return closed[len(prompt)]


def prompt_logprob_sum(entries: list[Any], ids: list[int], start: int) -> float:
    """Sum of vLLM `prompt_logprobs` for ids[start:] (entries[i] maps token id -> {logprob, ...} for ids[i])."""
    total = 0.0
    for pos in range(start, len(ids)):
        entry = entries[pos] or {}
        info = entry.get(str(ids[pos]), entry.get(ids[pos]))  # JSON keys are strings
        if info is None:
            raise ExactScoringError(f"the server's prompt_logprobs miss token {ids[pos]} at position {pos}")
        total += float(info["logprob"])
    return total


class VLLMScorer:
    """Scores candidates on the vLLM server behind Inspect's `vllm/` provider (see module docstring)."""

    backend = "vllm"

    def __init__(self, model: Model) -> None:
        self._model = weakref.ref(model)
        self._end: int | None = None
        self._answer_ids: dict[str, list[int]] = {}  # candidate lists repeat across samples: tokenize once
        self._tokenize_lock = anyio.Lock()

    def _require_model(self) -> Model:
        model = self._model()
        if model is None:
            raise ExactScoringError("the vllm/ model was closed before it could be scored")
        return model

    async def _tokenize_chat(self, api: Any, messages: list[dict[str, Any]], generation_prompt: bool) -> list[int]:
        root = str(api.base_url).rstrip("/").removesuffix("/v1")
        reply = await api.client.post(f"{root}/tokenize", cast_to=dict, body={
            "model": api.service_model_name(), "messages": messages,
            "add_generation_prompt": generation_prompt, "add_special_tokens": False})
        return [int(t) for t in reply["tokens"]]

    async def _tokenize_answers(self, api: Any, answers: list[str]) -> int:
        """Token ids of every candidate not seen before, through the provider's own tokenize() (one text per
        request; it starts or finds the server as generate would): the first alone, the rest concurrently."""
        missing = [a for a in answers if a not in self._answer_ids]
        if not missing:
            return 0
        self._answer_ids[missing[0]] = [int(t) for t in await api.tokenize(missing[0])]
        limit = anyio.Semaphore(TOKENIZE_CONCURRENCY)

        async def tokenize(text: str) -> None:
            async with limit:
                self._answer_ids[text] = [int(t) for t in await api.tokenize(text)]

        async with anyio.create_task_group() as tg:
            for text in missing[1:]:
                tg.start_soon(tokenize, text)
        return len(missing)

    async def score(self, messages: list[ChatMessage], answers: list[str]) -> ExactRead:
        model = self._require_model()
        api: Any = model.api
        async with self._tokenize_lock:  # concurrent samples share one tokenization of the candidate list
            requests = await self._tokenize_answers(api, answers)
        chat = [{"role": m.role, "content": m.text} for m in _provider_messages(model, messages)]
        prompt = await self._tokenize_chat(api, chat, True)
        requests += 1
        if self._end is None:
            closed = await self._tokenize_chat(api, [*chat, {"role": "assistant", "content": ""}], False)
            requests += 1
            self._end = end_of_turn(prompt, closed, str(model))
        tokenized = [self._answer_ids[a] for a in answers]
        if any(not t for t in tokenized):
            raise ExactScoringError("an empty candidate answer cannot be scored")
        sequences = [prompt + t + [self._end] for t in tokenized]
        logps: list[float] = []
        for start in range(0, len(sequences), VLLM_CHUNK):
            part = sequences[start:start + VLLM_CHUNK]
            # max_tokens=1: vLLM generates at least one token; only the prompt's logprobs are read.
            response = await api.client.completions.create(
                model=api.service_model_name(), prompt=part, max_tokens=1, temperature=0.0,
                extra_body={"prompt_logprobs": 1, "add_special_tokens": False})
            requests += 1
            choices = sorted(response.choices, key=lambda c: c.index or 0)
            if len(choices) != len(part):
                raise ExactScoringError(f"the server answered {len(choices)} choices for {len(part)} prompts")
            for seq, choice in zip(part, choices):
                entries = (choice.model_extra or {}).get("prompt_logprobs")
                if not entries:
                    raise ExactScoringError("the server returned no prompt_logprobs (vLLM's extension); "
                                            "exact scoring needs a vLLM server")
                logps.append(prompt_logprob_sum(entries, seq, len(prompt)))
        probs = {a: math.exp(lp) for a, lp in zip(answers, logps)}
        return ExactRead(probs, "vllm", prompt_tokens=len(prompt), scored_tokens=sum(len(t) + 1 for t in tokenized),
                         requests=requests)


def _provider_is(model: Model, module: str, name: str) -> bool:
    """isinstance against a provider class, without importing the provider (hf/ pulls in torch)."""
    loaded = sys.modules.get(f"inspect_ai.model._providers.{module}")
    cls = getattr(loaded, name, None) if loaded is not None else None
    return cls is not None and isinstance(model.api, cls)


_scorers: weakref.WeakKeyDictionary[Model, CandidateScorer] = weakref.WeakKeyDictionary()


def candidate_scorer(model: Model) -> CandidateScorer | None:
    """The exact scorer for this model, or None when its provider cannot score given answers (APIs)."""
    scorer = _scorers.get(model)
    if scorer is None:
        if _provider_is(model, "hf", "HuggingFaceAPI"):
            scorer = HFScorer(model)
        elif _provider_is(model, "vllm", "VLLMAPI") and not _provider_is(model, "vllm_completions",
                                                                          "VLLMCompletionsAPI"):
            scorer = VLLMScorer(model)
        else:
            return None
        _scorers[model] = scorer
    return scorer


def exact_unavailable(model: Model) -> str:
    return (f"{model} cannot score given answers: method=exact needs a local hf/ model or a vLLM server "
            f"(vllm/...); use method=auto, logprobs or sampling")

