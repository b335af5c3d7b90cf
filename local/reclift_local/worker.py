"""One function's execution environment: a process that imports the handler once and answers invocations.

Started by `workers.Worker` as `python -m reclift_local.worker '<json config>'`. Requests arrive as JSON lines on stdin;
answers leave as JSON lines on a duplicate of the original stdout. Handlers log to stdout (Powertools' Logger binds
`sys.stdout` when it is built), so fd 1 is pointed at stderr before the handler is imported: whatever the handler
prints, from Python or from a child process, lands in the runner's log and never in the protocol.
"""

from __future__ import annotations

import decimal
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The attributes and methods of the Python runtime's context object (awslambdaric's LambdaContext)."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # A string, as in the real runtime (it is read from the environment there too).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(message)
        sys.stdout.flush()


def _die_with_parent(parent_pid: int) -> None:
    """Exit when the runner dies, even mid-invocation (stdin's EOF only tells an idle worker).

    A watchdog thread rather than Linux's PR_SET_PDEATHSIG: that signal fires when the *thread* that started the
    process ends, and the runner starts workers from short-lived threads.
    """

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _error(exc: BaseException, request_id: str | None = None, error_type: str | None = None) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    payload: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": [f'  File "{f.filename}" Line {f.lineno}, in {f.name}\n    {f.line}\n' for f in frames],
    }
    if request_id:
        payload["requestId"] = request_id
    return payload


def _decimal_default(value: Any) -> Any:
    # The Python runtime serialises Decimal (DynamoDB's number type) as a JSON number.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@contextmanager
def function_env(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment with `values` set (as a function's configuration), restored afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_handler(code_dir: Path, handler: str, function_name: str) -> Handler:
    module_path, _, attribute = handler.rpartition(".")
    if not module_path or not attribute:
        raise ValueError(f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    module_path = module_path.replace("/", ".")
    file = code_dir.joinpath(*module_path.split("."))
    candidates = [file.with_suffix(".py"), file / "__init__.py"]
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        raise ModuleNotFoundError(f"Unable to import module '{module_path}': No module named '{module_path}'")
    # A unique name keeps two functions' `app` modules apart should they ever share a process; the plain name is
    # aliased so that the function's own `import app` does not run the module a second time.
    unique = f"reclift_fn_{function_name}_{module_path.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(unique, source)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"Unable to import module '{module_path}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    sys.modules.setdefault(module_path, module)
    spec.loader.exec_module(module)
    func = getattr(module, attribute, None)
    if not callable(func):
        raise AttributeError(f"Handler '{attribute}' missing on module '{module_path}'")
    result: Handler = func
    return result


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    try:
        line = json.dumps(message, default=_decimal_default)
    except (TypeError, ValueError) as exc:
        line = json.dumps(
            {
                "id": message.get("id"),
                "error": {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": message.get("id"),
                },
            }
        )
    channel.write(line + "\n")
    channel.flush()


def main() -> None:
    config = json.loads(sys.argv[1])
    _die_with_parent(int(config["parent_pid"]))
    # The protocol keeps the original stdout; from here on fd 1 (and sys.stdout) is stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    # Handlers must not read the protocol; give them an empty stdin, as Lambda does.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    code_dir = Path(config["code_dir"])
    started = time.monotonic()
    handler: Handler | None = None
    init_error: dict[str, Any] | None = None
    try:
        handler = load_handler(code_dir, config["handler"], config["function_name"])
    except Exception as exc:
        kind = (
            "Runtime.ImportModuleError"
            if isinstance(exc, ImportError)
            else "Runtime.HandlerNotFound"
            if isinstance(exc, AttributeError)
            else None
        )
        init_error = _error(exc, error_type=kind)
        print(f"[ERROR] {init_error['errorType']}: {init_error['errorMessage']}", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
    _send(channel, {"type": "ready", "init_ms": (time.monotonic() - started) * 1000, "init_error": init_error})

    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = str(request["id"])
        if handler is None:
            _send(channel, {"id": request_id, "error": dict(init_error or {}, requestId=request_id)})
            continue
        context = LambdaContext(request_id, config["function_arn"], int(request["deadline_ms"]))
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            error = _error(exc, request_id)
            # The runtime logs the error as one record before answering, as Lambda does.
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            _send(channel, {"id": request_id, "error": error})
            continue
        sys.stdout.flush()
        _send(channel, {"id": request_id, "result": result})
    # stdin closed: the runner is gone or is stopping this environment.


if __name__ == "__main__":
    main()
