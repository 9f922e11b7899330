"""Runs inside the sandbox (`python3 -I -c <this file>`): define model code, call one function.

Reads a JSON request on stdin, writes one result line (nonce + JSON) to the original stdout. The
model's own prints go to a capped buffer and raw writes to fd 1 go to stderr, so nothing the code
prints can be mistaken for the result. Only the standard library is used: this runs under whatever
`python3` the sandbox has.
"""

import errno
import io
import json
import os
import resource
import signal
import sys
import traceback

_DENIED_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH,
    errno.ECONNREFUSED, errno.EAFNOSUPPORT, errno.EAGAIN,
}
_LIMITS = {
    "memory_bytes": resource.RLIMIT_AS,
    "cpu_seconds": resource.RLIMIT_CPU,
    "max_processes": resource.RLIMIT_NPROC,
    "file_bytes": resource.RLIMIT_FSIZE,
}


class OutputLimitReached(BaseException):
    """Raised from print(): a BaseException, so `except Exception` in model code cannot swallow it."""


class CappedText(io.TextIOBase):
    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.size = 0

    def writable(self):
        return True

    def write(self, text):
        self.size += len(text)
        if self.size > self.limit:
            raise OutputLimitReached(f"printed more than {self.limit} characters")
        self.parts.append(text)
        return len(text)

    def text(self):
        return "".join(self.parts)


def lower_limits(limits):
    # Only ever lowers a limit: under bwrap the sandbox's own limits stay the ceiling.
    for name, value in limits.items():
        if value is None:
            continue
        kind = _LIMITS[name]
        soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        new_hard = hard if name == "cpu_seconds" else value  # cpu: keep headroom for SIGKILL
        resource.setrlimit(kind, (value, new_hard))


def classify(error):
    if isinstance(error, OutputLimitReached):
        return "output_limit"
    if isinstance(error, MemoryError):
        return "memory"
    if type(error).__name__ == "gaierror":  # DNS failure; socket itself is not imported for this
        return "denied"
    if isinstance(error, OSError):
        if error.errno == errno.EFBIG:
            return "output_limit"
        if error.errno == errno.ENOMEM:
            return "memory"
        if error.errno in _DENIED_ERRNOS:
            return "denied"
    return "error"


def main():
    request = json.loads(sys.stdin.read())
    nonce = request["nonce"]
    main_pid = os.getpid()
    result_fd = os.dup(1)
    os.dup2(2, 1)  # raw writes to fd 1 by the code land in stderr, never in the result channel
    printed = CappedText(request["max_print_chars"])
    sys.stdout = printed
    sys.stderr = printed
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises EFBIG instead of killing us
    result = {"outcome": "error", "value": None, "detail": ""}
    try:
        lower_limits(request["limits"])
        namespace = {"__name__": "__model_code__", "__builtins__": __builtins__}
        exec(compile(request["code"], "<model code>", "exec"), namespace)
        function = namespace.get(request["function"])
        if not callable(function):
            result["detail"] = f"the code defines no function named {request['function']!r}"
        else:
            value = function(*request["args"], **request["kwargs"])
            try:
                json.dumps(value)
            except (TypeError, ValueError) as error:
                result["detail"] = f"return value is not JSON: {error}"
            else:
                result.update(outcome="ok", value=value)
    except SystemExit as error:
        result["detail"] = f"the code called exit({error.code!r})"
    except BaseException as error:  # noqa: BLE001 - model code may raise anything; record it
        result["outcome"] = classify(error)
        result["detail"] = f"{type(error).__name__}: {error}"
        result["traceback"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:]
    if os.getpid() != main_pid:
        os._exit(0)  # a child the code forked: only the original process reports
    result["printed"] = printed.text()[-10000:]
    line = nonce + json.dumps(result) + "\n"
    os.write(result_fd, line.encode("utf-8", errors="replace"))
    os._exit(0)  # skip atexit hooks and threads the code may have left behind


main()
