"""A fake vLLM OpenAI-compatible server on 127.0.0.1: the endpoints exact candidate scoring uses
(`solvers/exact_scoring.py`), for tests and the cost benchmark.

* `GET /v1/models` — the served base model and adapters (Inspect's `vllm/` provider checks them);
* `POST /tokenize` — `prompt` (text) or `messages` (+ `add_generation_prompt`), as vLLM documents it;
* `POST /v1/completions` — a prompt or a list of token-id prompts, with vLLM's `prompt_logprobs` extension:
  per prompt position a `{token_id: {"logprob", "rank", "decoded_token"}}` entry (None for the first).

The language model behind it is pluggable (`LanguageModel`): `CharModel` is a synthetic character-level
model with a ChatML template whose next-token distribution is a fixed function of the last tokens (so a test
can compute any probability by hand); `HFModel` wraps a local transformers model and tokenizer (the tiny
base) the way vLLM would render and tokenize its chat template; `AnswerModel` replies with exactly the
answer distribution of `fake_openai_server.py` (the benchmark's synthetic organism). Every request body is
kept in `requests`; `stats` counts requests and the prompt tokens scored.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from selfaware.loopback import LoopbackServer, read_body, send_json


class LanguageModel(Protocol):
    def chat_ids(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]: ...
    def text_ids(self, text: str) -> list[int]: ...
    def token_logprobs(self, ids: list[int]) -> list[float]: ...  # log P(ids[i] | ids[:i]) for i >= 1
    def decode(self, token: int) -> str: ...


class CharModel:
    """Characters are tokens; `<|im_start|>` and `<|im_end|>` are specials 1 and 2. The next-token logits
    are pseudo-random but fixed by the last three tokens (and `salt`: a different salt is another model,
    e.g. a LoRA adapter)."""

    SPECIALS = {"<|im_start|>": 1, "<|im_end|>": 2}
    VOCAB = 3 + 95  # specials + printable ASCII (32..126) + newline below

    def __init__(self, salt: str = "") -> None:
        self.salt = salt
        self._cache: dict[tuple[int, ...], list[float]] = {}

    def text_ids(self, text: str) -> list[int]:
        out, i = [], 0
        while i < len(text):
            special = next((s for s in self.SPECIALS if text.startswith(s, i)), None)
            if special:
                out.append(self.SPECIALS[special])
                i += len(special)
                continue
            ch = text[i]
            out.append(0 if ch == "\n" else 3 + ord(ch) - 32 if 32 <= ord(ch) < 127 else 3)
            i += 1
        return out

    def decode(self, token: int) -> str:
        names = {v: k for k, v in self.SPECIALS.items()}
        return names.get(token) or ("\n" if token == 0 else chr(token - 3 + 32))

    def chat_ids(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return self.text_ids(text + ("<|im_start|>assistant\n" if add_generation_prompt else ""))

    def next_logprobs(self, prefix: list[int]) -> list[float]:
        key = tuple(prefix[-3:])
        if key not in self._cache:
            rng = random.Random(f"{self.salt}:{list(key)}")
            logits = [rng.gauss(0.0, 2.0) for _ in range(self.VOCAB)]
            top = max(logits)
            norm = top + math.log(sum(math.exp(x - top) for x in logits))
            self._cache[key] = [x - norm for x in logits]
        return self._cache[key]

    def token_logprobs(self, ids: list[int]) -> list[float]:
        return [self.next_logprobs(ids[:i])[ids[i]] for i in range(1, len(ids))]


class HFModel:
    """A local transformers model served like vLLM serves it: the chat template rendered to text and
    tokenized without added special tokens; prompt logprobs from one forward pass."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    def chat_ids(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        return self.text_ids(text)

    def text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, token: int) -> str:
        return self.tokenizer.convert_ids_to_tokens(token)

    def token_logprobs(self, ids: list[int]) -> list[float]:
        import torch

        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        return [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]


class AnswerModel:
    """The benchmark's synthetic organism as a language model: after the chat's generation prompt it replies
    with `fake_openai_server.answer_distribution(prompt)` exactly (the reply's tokens, then `<|im_end|>`), so
    exact scoring of the same organism can sit beside the API paths. Tokens are words and punctuation marks
    with their leading whitespace (the API fake's count), specials atomic."""

    SPECIALS = ("<|im_start|>", "<|im_end|>")
    TOKEN = re.compile(r"<\|im_start\|>|<\|im_end\|>|\s+(?=<\|im_)|\s*(?:\w+|[^\w\s])|\s+")
    GENERATION = "<|im_start|>assistant\n"
    LEFTOVER = 1e-12  # probability of any reply the organism never gives

    def __init__(self) -> None:
        from fake_openai_server import answer_distribution

        self._distribution = answer_distribution
        self._ids: dict[str, int] = {s: i for i, s in enumerate(self.SPECIALS)}
        self._strs: list[str] = list(self.SPECIALS)
        self._lock = threading.Lock()  # the vocabulary grows as texts arrive, from the server's threads

    def _id(self, token: str) -> int:
        with self._lock:
            if token not in self._ids:
                self._ids[token] = len(self._strs)
                self._strs.append(token)
            return self._ids[token]

    def text_ids(self, text: str) -> list[int]:
        return [self._id(t) for t in self.TOKEN.findall(text)]

    def decode(self, token: int) -> str:
        return self._strs[token]

    def chat_ids(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return self.text_ids(text + (self.GENERATION if add_generation_prompt else ""))

    def token_logprobs(self, ids: list[int]) -> list[float]:
        text = "".join(self._strs[i] for i in ids)
        cut = text.rfind(self.GENERATION)
        if cut < 0:
            return [0.0] * (len(ids) - 1)
        chat = text[:cut]
        contents = [part.split("\n", 1)[1].removesuffix("<|im_end|>\n").removesuffix("<|im_end|>")
                    for part in chat.split("<|im_start|>")[1:]]
        dist = self._distribution("\n".join(contents))
        replies = {tuple(self.text_ids(a)) + (self._ids["<|im_end|>"],): p for a, p in dist.items()}
        start = len(self.text_ids(text[: cut + len(self.GENERATION)]))
        out = [0.0] * (start - 1)  # the prompt itself: certain, for this fake
        for pos in range(start, len(ids)):
            prefix, token = tuple(ids[start:pos]), ids[pos]
            below = sum(p for r, p in replies.items() if r[: len(prefix)] == prefix)
            here = sum(p for r, p in replies.items() if r[: len(prefix) + 1] == prefix + (token,))
            out.append(math.log(here / below) if here > 0 else math.log(self.LEFTOVER))
        return out



class FakeVLLM(LoopbackServer):
    """`FakeVLLM({"base": CharModel(), "my-adapter": CharModel("lora")}).start()`; the first name is the base."""

    def __init__(self, models: dict[str, LanguageModel], max_model_len: int = 4096) -> None:
        self.models = models
        self.max_model_len = max_model_len
        self.requests: list[tuple[str, dict[str, Any]]] = []
        # prompt_tokens: every token of every prompt sent; computed_tokens: what a prefix cache computes (each
        # distinct prefix once per request: the shared chat prompt once, then each candidate's own tokens).
        self.stats = {"requests": 0, "tokenize_requests": 0, "completion_requests": 0, "prompt_tokens": 0,
                      "computed_tokens": 0}
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    def model(self, name: str | None) -> LanguageModel:
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            raise KeyError(name)
        return self.models[name]

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((path, body))
            self.stats["requests"] += 1
            self.stats["tokenize_requests"] += path == "/tokenize"
            self.stats["completion_requests"] += path == "/v1/completions"
        if path == "/tokenize":
            lm = self.model(body.get("model"))
            if "messages" in body:
                ids = lm.chat_ids(body["messages"], bool(body.get("add_generation_prompt", True)))
            else:
                ids = lm.text_ids(body["prompt"])
            return 200, {"tokens": ids, "count": len(ids), "max_model_len": self.max_model_len}
        if path == "/v1/completions":
            return 200, self.complete(body)
        return 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        lm = self.model(body.get("model"))
        prompts = body["prompt"]
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        choices, prompt_tokens, prefixes = [], 0, set()
        for i, prompt in enumerate(prompts):
            ids = lm.text_ids(prompt) if isinstance(prompt, str) else list(prompt)
            prompt_tokens += len(ids)
            prefixes.update(tuple(ids[:n]) for n in range(1, len(ids) + 1))
            entry: dict[str, Any] = {"index": i, "text": "", "finish_reason": "length", "logprobs": None}
            if body.get("prompt_logprobs") is not None:
                logps = lm.token_logprobs(ids)
                entry["prompt_logprobs"] = [None] + [
                    {str(t): {"logprob": lp, "rank": 1, "decoded_token": lm.decode(t)}} for t, lp in zip(ids[1:], logps)]
            choices.append(entry)
        with self._lock:
            self.stats["prompt_tokens"] += prompt_tokens
            self.stats["computed_tokens"] += len(prefixes)
        return {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": body.get("model"),
                "choices": choices, "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(prompts),
                                              "total_tokens": prompt_tokens + len(prompts)}}


def _handler(fake: FakeVLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/v1/models"):
                send_json(self, 200, {"object": "list", "data": [
                    {"id": name, "object": "model", "owned_by": "fake", "max_model_len": fake.max_model_len}
                    for name in fake.models]})
            else:
                send_json(self, 404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            body = json.loads(read_body(self) or b"{}")
            try:
                code, payload = fake.handle(self.path.split("?")[0].rstrip("/"), body)
            except KeyError as e:
                code, payload = 404, {"error": {"message": f"model {e} is not served", "type": "NotFoundError"}}
            send_json(self, code, payload)

    return Handler
