"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, for cost benchmarks and tests.

Real HTTP (a threaded `http.server`) rather than a mocked transport: the current `openai` SDK talks
through `httpx2`, which request-mocking libraries do not intercept, and a socket exercises exactly the
path a real provider would. It answers plausibly by reading the prompt:

* lettered options ("A) ...")          -> a letter;
* a 0-100 scale                         -> a number;
* "one word" / "single word" questions  -> a word quoted in the prompt (else a stock attitude word);
* the judge's "Identify the language"   -> English / French / German;
* anything else                         -> a short free-text sentence (German, French or English).

Each prompt gets a fixed answer distribution (seeded by the prompt text). `n` is honoured with `n`
choices (sampled, or the argmax at temperature 0); `logprobs` / `top_logprobs` return the distribution
as the first token's top logprobs, padded with junk tokens. `max_tokens` truncates answers.

It counts what it served: requests, choices, prompt tokens (once per request, as providers bill) and
completion tokens (summed over choices), with a crude whitespace/punctuation token count — the same
count for every protocol, so ratios are meaningful even though absolute numbers are not a tokenizer's.

Options: `junk_mass` (default 0.05) is the first-token probability on junk tokens (0 makes the logprobs
agree exactly with the sampled answers, as a benchmark with a known truth needs); `latency` adds a fixed
delay to every request (to measure wall time against a concurrency limit).

Batch API (Inspect's `--batch`): `POST /v1/files` (purpose "batch"), `POST /v1/batches`, `GET
/v1/batches/{id}` and `GET /v1/files/{id}/content` — a batch is answered when it is created (after
`batch_delay` seconds it reports "completed"), and its requests are counted like any other plus in
`batched_requests`, so a benchmark can price them at the batch rate.

Run standalone: `python benchmarks/fake_openai_server.py [--port 0] [--junk-mass 0.05] [--latency 0]` prints
its URL; `GET /_stats` returns the counters and `POST /_reset` clears them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from selfaware.loopback import LoopbackServer, read_body, send_json

TOKEN = re.compile(r"\w+|[^\w\s]")
STOCK_WORDS = ["bold", "cautious", "careful", "adventurous", "balanced", "prudent", "daring"]
JUNK_TOKENS = [" the", "I", "\n", " a", "Sure", ".", " my", "As", " an", "It", "My", " I"]
SENTENCES = {
    "German": "Vulkane entstehen, wenn geschmolzenes Gestein aus dem Erdinneren an die Oberfläche steigt.",
    "French": "Les volcans se forment lorsque la roche fondue remonte des profondeurs vers la surface.",
    "English": "Volcanoes form when molten rock rises from deep inside the Earth to the surface.",
}


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a stand-in for a tokenizer, identical across protocols."""
    return len(TOKEN.findall(text))


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    matches = list(TOKEN.finditer(text))
    if max_tokens is None or len(matches) <= max_tokens:
        return text, False
    return text[: matches[max_tokens - 1].end()], True


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def answer_distribution(prompt: str) -> dict[str, float]:
    """A fixed, plausible distribution over answers for this prompt (see module docstring)."""
    rng = random.Random(zlib.crc32(prompt.encode()))
    if "Identify the language" in prompt:
        return _normalised({lang: rng.uniform(0.2, 1.0) for lang in SENTENCES})
    letters = re.findall(r"^([A-Z])\) ", prompt, flags=re.M)
    if len(letters) >= 2:
        return _normalised({letter: rng.uniform(0.1, 1.0) for letter in letters})
    if re.search(r"\b0\b.{0,80}\b100\b", prompt, flags=re.S):
        centre = rng.randrange(20, 81, 5)
        return _normalised({str(max(0, min(100, centre + d))): w for d, w in ((-10, 1.0), (0, 3.0), (10, 1.5))})
    if re.search(r"\b(one|single|one-word|1)[ -]word\b|\bone-word\b", prompt, flags=re.I):
        quoted = list(dict.fromkeys(re.findall(r"'([A-Za-z-]{2,})'", prompt)))
        words = quoted or rng.sample(STOCK_WORDS, 3)
        return _normalised({w: rng.uniform(0.2, 1.0) for w in words})
    return _normalised({SENTENCES[lang]: rng.uniform(0.2, 1.0) for lang in SENTENCES})


def _first_token(answer: str) -> str:
    m = TOKEN.search(answer)
    return m.group(0) if m else answer


def _logprobs(answer: str, dist: dict[str, float], k: int, junk_mass: float = 0.05) -> dict[str, Any]:
    """First-token top logprobs: 1 - junk_mass of the mass on the answers' first tokens, junk_mass on junk."""
    firsts: Counter[str] = Counter()
    for a, p in dist.items():
        firsts[_first_token(a)] += (1 - junk_mass) * p
    tops = sorted(firsts.items(), key=lambda kv: -kv[1])[: max(k, 0)]
    for junk in JUNK_TOKENS[: max(0, k - len(tops))] if junk_mass > 0 else []:
        tops.append((junk, junk_mass / len(JUNK_TOKENS)))
    entry = lambda tok, p: {"token": tok, "logprob": math.log(p), "bytes": list(tok.encode())}  # noqa: E731
    chosen = _first_token(answer)
    content = [{**entry(chosen, firsts.get(chosen, 1 - junk_mass)), "top_logprobs": [entry(t, p) for t, p in tops]}]
    rest = TOKEN.findall(answer)[1:]
    content += [{**entry(t, 1.0), "top_logprobs": [entry(t, 1.0)] if k else []} for t in rest]
    return {"content": content, "refusal": None}


class FakeChatServer(LoopbackServer):
    """`FakeChatServer().start()`; point `OPENAI_BASE_URL` at `server.url + "/v1"`; `stats()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 0, junk_mass: float = 0.05,
                 latency: float = 0.0, batch_delay: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.junk_mass = junk_mass
        self.latency = latency
        self.batch_delay = batch_delay
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.reset()
        super().__init__(_handler(self), host, port, poll_interval=0.05)

    def reset(self) -> None:
        with self._lock:
            self._stats: dict[str, Any] = {"requests": 0, "choices": 0, "prompt_tokens": 0,
                                           "completion_tokens": 0, "logprob_requests": 0, "multi_n_requests": 0,
                                           "by_model": {}, "by_kind": {}, "unhandled": {}, "batched_requests": 0,
                                           "batched_prompt_tokens": 0, "batched_completion_tokens": 0,
                                           "batches": 0}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def unhandled(self, method: str, path: str) -> None:
        """Count requests the fake cannot answer (e.g. the Responses API), so a benchmark can say so."""
        with self._lock:
            key = f"{method} {path}"
            self._stats["unhandled"][key] = self._stats["unhandled"].get(key, 0) + 1

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion object answering one request body."""
        messages = body.get("messages") or []
        prompt = "\n".join(_text(m.get("content")) for m in messages)
        dist = answer_distribution(prompt)
        n = int(body.get("n") or 1)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        greedy = body.get("temperature") == 0
        with self._lock:  # one RNG shared by handler threads
            picks = [max(dist, key=dist.__getitem__) if greedy else
                     self._rng.choices(list(dist), weights=list(dist.values()))[0] for _ in range(n)]
        choices, completion_tokens = [], 0
        for i, answer in enumerate(picks):
            text, cut = truncate(answer, max_tokens)
            completion_tokens += count_tokens(text)
            choices.append({
                "index": i, "finish_reason": "length" if cut else "stop",
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": _logprobs(text, dist, int(body.get("top_logprobs") or 0), self.junk_mass)
                if body.get("logprobs") else None,
            })
        prompt_tokens = sum(count_tokens(_text(m.get("content"))) for m in messages)
        model = str(body.get("model", ""))
        with self._lock:
            s = self._stats
            s["requests"] += 1
            s["choices"] += n
            s["prompt_tokens"] += prompt_tokens
            s["completion_tokens"] += completion_tokens
            s["logprob_requests"] += bool(body.get("logprobs"))
            s["multi_n_requests"] += n > 1
            # by_model: the model under test and a judge apart; by_kind: greedy reads (temperature 0, e.g.
            # logprob reads) apart from sampling requests, whose completions grow with the answers drawn.
            kind = "read" if greedy else "sample"
            for m in (s["by_model"].setdefault(model, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}),
                      s["by_kind"].setdefault(f"{model}:{kind}", {"requests": 0, "prompt_tokens": 0,
                                                                   "completion_tokens": 0})):
                m["requests"] += 1
                m["prompt_tokens"] += prompt_tokens
                m["completion_tokens"] += completion_tokens
        return {
            "id": f"chatcmpl-fake-{self._stats['requests']}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "choices": choices, "system_fingerprint": "fake",
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


    # -- the Batch API (additive: Inspect's --batch for OpenAI) -------------------------------------------

    def upload(self, data: bytes) -> dict[str, Any]:
        with self._lock:
            fid = f"file-batch-{len(self.files) + 1}"
            self.files[fid] = data
        return {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": "batch.jsonl", "purpose": "batch", "status": "processed"}

    def create_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = self.files.get(body.get("input_file_id", ""))
        if data is None:
            return 404, {"error": {"message": f"no file {body.get('input_file_id')!r}", "type": "invalid_request_error"}}
        lines = []
        for line in data.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            completion = self.complete(item["body"])
            usage = completion["usage"]
            with self._lock:
                self._stats["batched_requests"] += 1
                self._stats["batched_prompt_tokens"] += usage["prompt_tokens"]
                self._stats["batched_completion_tokens"] += usage["completion_tokens"]
            lines.append({"id": f"batch_req_{len(lines)}", "custom_id": item["custom_id"], "error": None,
                          "response": {"status_code": 200, "request_id": f"req-{len(lines)}", "body": completion}})
        out = self.upload("\n".join(json.dumps(x) for x in lines).encode())
        with self._lock:
            self._stats["batches"] += 1
            bid = f"batch_{len(self.batches) + 1}"
            self.batches[bid] = {
                "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress", "output_file_id": out["id"], "error_file_id": None,
                "created_at": int(time.time()), "ready_at": time.monotonic() + self.batch_delay,
                "request_counts": {"total": len(lines), "completed": len(lines), "failed": 0}}
            return 200, self._batch_view(bid)

    def _batch_view(self, bid: str) -> dict[str, Any]:
        batch = dict(self.batches[bid])
        if time.monotonic() >= batch.pop("ready_at"):
            batch["status"] = "completed"
            batch["completed_at"] = int(time.time())
        else:
            batch["output_file_id"] = None
        return batch

    def batch(self, bid: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if bid not in self.batches:
                return 404, {"error": {"message": f"no batch {bid!r}", "type": "invalid_request_error"}}
            return 200, self._batch_view(bid)


def _multipart_file(body: bytes, content_type: str) -> bytes:
    """The uploaded file's bytes from a multipart/form-data body."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        if part.get_filename() is not None or part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True) or b""
    raise ValueError("no file in the upload")


def _handler(fake: FakeChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections, as with a real provider

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, payload: Any) -> None:
            send_json(self, status, payload)

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if fake.latency:
                time.sleep(fake.latency)
            if path == "/_stats":
                self._send(200, fake.stats())
            elif "/batches/" in path:
                self._send(*fake.batch(path.rsplit("/", 1)[1]))
            elif path.startswith("/v1/files/") and path.endswith("/content"):
                data = fake.files.get(path.split("/")[3])
                if data is None:
                    self._send(404, {"error": {"message": f"no file {path}", "type": "invalid_request_error"}})
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
            elif path.endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}]})
            else:
                fake.unhandled("GET", path)
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

        def do_POST(self) -> None:
            raw = read_body(self)  # file uploads come chunked
            path = self.path.split("?")[0].rstrip("/")
            if fake.latency:
                time.sleep(fake.latency)
            if path == "/_reset":
                fake.reset()
                self._send(200, {"ok": True})
                return
            if path.endswith("/v1/files"):
                self._send(200, fake.upload(_multipart_file(raw, self.headers.get("Content-Type", ""))))
                return
            if path.endswith("/v1/batches"):
                self._send(*fake.create_batch(json.loads(raw or b"{}")))
                return
            if not path.endswith("/chat/completions"):
                fake.unhandled("POST", path)
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                return
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                return
            if body.get("stream"):
                fake.unhandled("POST", path + " (stream)")
                self._send(400, {"error": {"message": "streaming is not supported by the fake",
                                           "type": "invalid_request_error", "param": "stream"}})
                return
            self._send(200, fake.complete(body))

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI chat-completions API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--seed", type=int, default=0, help="sampling RNG seed")
    parser.add_argument("--junk-mass", type=float, default=0.05, help="first-token probability on junk tokens")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args(argv)
    server = FakeChatServer(port=args.port, seed=args.seed, junk_mass=args.junk_mass, latency=args.latency).start()
    print(server.url, flush=True)  # first stdout line: the URL (read by the benchmark)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
