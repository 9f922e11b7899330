"""A small fake of OpenAI's files + fine-tuning endpoints, served on 127.0.0.1 in a thread.

The current `openai` SDK talks through `httpx2`, which respx/pytest-httpx do not intercept, so tests
point the real SDK at this server instead (`OPENAI_BASE_URL=<fake.url>/v1`). Behaviours are scripted
through attributes:

* `polls_to_finish`: a job reports validating_files, then running, and finishes on this poll;
* `job_outcome`: "succeeded" or "failed" (with `job_error`);
* `create_403`: job create answers 403 `training_not_available`;
* `fail_next[route]`: status codes answered (and consumed) before a route behaves, e.g.
  `{"create": [429, 500]}`; routes: upload, create, list, retrieve, events, checkpoints;
* `create_then_break`: list of "500" / "drop" — the job IS created server-side, but the client sees a
  500 or a dropped connection (the ambiguous failure that must not lead to a second job);
* `ignore_metadata_filter`: the list endpoint ignores `metadata[...]` (older API / proxies);
* `job_outcome` may also be a state the suite does not know (e.g. "paused"): the job then stays in it;
* `garble_next[route]`: how many times the route answers 200 with a body that is not JSON.

`uploaded` keeps the raw body of every file upload, so tests can check what reached the service.

Counters (`creates`: job-create POSTs received, `uploads`, `requests`) let tests assert what the
server saw.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from selfaware.loopback import LoopbackServer


class FakeOpenAI(LoopbackServer):
    def __init__(self) -> None:
        self.polls_to_finish = 2
        self.job_outcome = "succeeded"
        self.job_error = {"code": "invalid_training_file", "message": "The job failed due to an invalid training file."}
        self.create_403 = False
        self.fail_next: dict[str, list[int]] = {}
        self.create_then_break: list[str] = []
        self.ignore_metadata_filter = False
        self.garble_next: dict[str, int] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.creates = 0
        self.uploads = 0
        self.uploaded: list[bytes] = []
        self.requests: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    # -- behaviour -------------------------------------------------------------------------------

    def _scripted_failure(self, route: str) -> int | None:
        codes = self.fail_next.get(route)
        return codes.pop(0) if codes else None

    def _garbled(self, route: str) -> bool:
        if self.garble_next.get(route, 0) > 0:
            self.garble_next[route] -= 1
            return True
        return False

    def _job_view(self, job: dict[str, Any], poll: bool) -> dict[str, Any]:
        if poll and job["status"] not in ("succeeded", "failed", "cancelled"):
            n = self.polls[job["id"]] = self.polls.get(job["id"], 0) + 1
            if n >= self.polls_to_finish:
                job["status"] = self.job_outcome
                job["finished_at"] = int(time.time())
                if self.job_outcome == "succeeded":
                    job["fine_tuned_model"] = f"ft:{job['model']}:fake-org:{job['user_provided_suffix']}:AbC123"
                    job["trained_tokens"] = 1234
                else:
                    job["error"] = dict(self.job_error)
            else:
                job["status"] = "running"
        return job

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            parts = path.strip("/").split("/")  # ["v1", "fine_tuning", "jobs", ...]
            if parts[:2] == ["v1", "files"] and method == "POST":
                if code := self._scripted_failure("upload"):
                    return code, _err(code)
                self.uploads += 1
                self.uploaded.append(body)
                fid = f"file-{self.uploads}"
                return 200, {"id": fid, "object": "file", "bytes": len(body), "created_at": int(time.time()),
                             "filename": "train.jsonl", "purpose": "fine-tune", "status": "processed"}
            if parts[:3] != ["v1", "fine_tuning", "jobs"]:
                return 404, _err(404, "not_found")
            rest = parts[3:]
            if not rest and method == "POST":
                self.creates += 1
                if code := self._scripted_failure("create"):
                    return code, _err(code)
                if self.create_403:
                    return 403, {"error": {"message": "Fine-tuning is not available for this organization.",
                                           "type": "invalid_request_error", "param": None,
                                           "code": "training_not_available"}}
                job = self._create(json.loads(body))
                if self.create_then_break:
                    return (-1 if self.create_then_break.pop(0) == "drop" else 500), _err(500)
                return 200, job
            if not rest and method == "GET":
                if code := self._scripted_failure("list"):
                    return code, _err(code)
                wanted = {k[len("metadata["):-1]: v[0] for k, v in query.items() if k.startswith("metadata[")}
                jobs = sorted(self.jobs.values(), key=lambda j: j["created_at"], reverse=True)
                if wanted and not self.ignore_metadata_filter:
                    jobs = [j for j in jobs if all((j["metadata"] or {}).get(k) == v for k, v in wanted.items())]
                return 200, {"object": "list", "data": jobs, "has_more": False}
            job = self.jobs.get(rest[0])
            if job is None:
                return 404, _err(404, "not_found")
            if len(rest) == 1:
                if code := self._scripted_failure("retrieve"):
                    return code, _err(code)
                if self._garbled("retrieve"):
                    return 200, b'{"id": "ftjob-0001", "status": '
                return 200, self._job_view(job, poll=True)
            if rest[1] == "events":
                if code := self._scripted_failure("events"):
                    return code, _err(code)
                events = [_event(job, i, "info", "Validating training file") for i in range(1)]
                if job["status"] == "succeeded":
                    events.append(_event(job, 1, "info", "The job has successfully completed"))
                if job["status"] == "failed":
                    events.append(_event(job, 1, "error", job["error"]["message"]))
                return 200, {"object": "list", "data": list(reversed(events)), "has_more": False}
            if rest[1] == "checkpoints":
                if code := self._scripted_failure("checkpoints"):
                    return code, _err(code)
                data = []
                if job["status"] == "succeeded":
                    data.append({"id": "ftckpt-1", "object": "fine_tuning.job.checkpoint", "created_at": 1,
                                 "fine_tuned_model_checkpoint": job["fine_tuned_model"] + ":ckpt-step-10",
                                 "fine_tuning_job_id": job["id"], "metrics": {"step": 10}, "step_number": 10})
                return 200, {"object": "list", "data": data, "has_more": False}
            return 404, _err(404, "not_found")

    def _create(self, req: dict[str, Any]) -> dict[str, Any]:
        jid = f"ftjob-{len(self.jobs) + 1:04d}"
        job = {
            "id": jid, "object": "fine_tuning.job", "created_at": int(time.time()) + len(self.jobs),
            "model": req["model"], "training_file": req["training_file"], "validation_file": None,
            "status": "validating_files", "fine_tuned_model": None, "finished_at": None, "error": None,
            "hyperparameters": req.get("method", {}).get("supervised", {}).get("hyperparameters", {}),
            "method": req.get("method"), "seed": req.get("seed", 0), "metadata": req.get("metadata"),
            "user_provided_suffix": req.get("suffix"), "organization_id": "org-fake", "result_files": [],
            "trained_tokens": None, "request": req,
        }
        self.jobs[jid] = job
        return job


def _event(job: dict[str, Any], i: int, level: str, message: str) -> dict[str, Any]:
    return {"id": f"ftevent-{job['id']}-{i}", "object": "fine_tuning.job.event", "created_at": job["created_at"] + i,
            "level": level, "message": message, "type": "message"}


def _err(code: int, kind: str | None = None) -> dict[str, Any]:
    return {"error": {"message": f"fake error {code}", "type": kind or "server_error", "param": None, "code": kind}}


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self, method: str) -> None:
            body = self._body()
            fake.auth.add(self.headers.get("Authorization", ""))
            url = urlsplit(self.path)
            code, payload = fake.handle(method, url.path, parse_qs(url.query), body)
            if code == -1:  # drop the connection without an answer
                self.close_connection = True
                return
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
