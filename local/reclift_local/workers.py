"""Execution environments for the template's functions: worker processes, pooled per function like Lambda's."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .emulator import FAKE_CREDENTIALS
from .output import Output
from .template import ACCOUNT_ID, FunctionSpec

# Lambda's payload limit for synchronous invocations, both ways.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
INIT_TIMEOUT_SECONDS = 30.0  # generous: Lambda allows 10 s of init, but a cold laptop disk is slower
# RECLIFT_ADMIN_API_URL: the local BackfillFunction reaches the fake Admin API (`make fake-admin`), not Shopify.
# CATALOG_CACHE_SECONDS, LEARNING_CACHE_SECONDS: how long the local StorefrontFunction serves from its caches
# (`CATALOG_CACHE_SECONDS=0 make run` shows every catalog change at once).
PASSTHROUGH_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SYSTEMROOT",
    "VIRTUAL_ENV",
    "RECLIFT_ADMIN_API_URL",
    "CATALOG_CACHE_SECONDS",
    "LEARNING_CACHE_SECONDS",
)
LOCAL_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    request_id: str
    duration_ms: float
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    in_flight: int = 0
    cold_starts: int = 0
    failed_records: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def function_environment(
    spec: FunctionSpec, *, region: str, endpoint: str, dynamodb_endpoint: str | None = None
) -> dict[str, str]:
    """The environment Lambda would give the function, pointed at the emulator (and DynamoDB Local, if used)."""
    env = {key: os.environ[key] for key in PASSTHROUGH_ENV if key in os.environ}
    env.update(spec.environment)
    python_path = [str(spec.code_dir), *(str(p) for p in spec.layer_dirs), str(LOCAL_PACKAGE_ROOT)]
    env.update(
        {
            **FAKE_CREDENTIALS,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TZ": ":UTC",  # Lambda's clock is UTC whatever the laptop's time zone
        }
    )
    if dynamodb_endpoint:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    # Powertools' dev mode pretty-prints logs and changes behaviour: the local stack must behave like AWS.
    env.pop("POWERTOOLS_DEV", None)
    return env


class WorkerDied(Exception):
    pass


class Worker:
    """One process running one function; one invocation at a time."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], output: Output, function_arn: str) -> None:
        self.spec = spec
        self.env = dict(env)
        self.output = output
        self.function_arn = function_arn
        self.process: subprocess.Popen[bytes] | None = None
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.init_error: dict[str, Any] | None = None
        self.init_ms = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        config = {
            "parent_pid": os.getpid(),
            "code_dir": str(self.spec.code_dir),
            "handler": self.spec.handler,
            "function_name": self.spec.logical_id,
            "function_arn": self.function_arn,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reclift_local.worker", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.spec.code_dir,
            # Its own session: Ctrl-C in the terminal reaches the runner, which then stops the workers in order.
            start_new_session=True,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        threading.Thread(target=self._read_protocol, args=(self.process.stdout,), daemon=True).start()
        threading.Thread(target=self._relay_logs, args=(self.process.stderr,), daemon=True).start()

    def _read_protocol(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                self._messages.put(json.loads(line))
            except ValueError:
                self.output.line(self.spec.logical_id, f"(unreadable protocol line) {line[:200]!r}")
        self._messages.put(None)  # EOF: the process is gone

    def _relay_logs(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.output.line(self.spec.logical_id, line.decode("utf-8", "replace").rstrip("\n"))

    def wait_ready(self, timeout: float = INIT_TIMEOUT_SECONDS) -> None:
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerDied(f"{self.spec.logical_id}: no answer from the worker within {timeout:.0f} s") from None
        if message is None:
            raise WorkerDied(f"{self.spec.logical_id}: the worker exited during init (see its log above)")
        self.init_error = message.get("init_error")
        self.init_ms = float(message.get("init_ms", 0.0))

    def invoke(self, event: Any, request_id: str, timeout_s: float) -> Outcome:
        """Run one invocation; raises TimeoutError or WorkerDied, after which this worker must be discarded."""
        assert self.process is not None
        assert self.process.stdin is not None
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + timeout_s * 1000)
        line = json.dumps({"id": request_id, "event": event, "deadline_ms": deadline_ms}) + "\n"
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc
        try:
            message = self._messages.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None
        if message is None:
            raise WorkerDied("the worker process exited")
        duration = (time.monotonic() - started) * 1000
        if message.get("id") != request_id:  # cannot happen with one invocation at a time; never trust it
            raise WorkerDied(f"answer for {message.get('id')} while waiting for {request_id}")
        if "error" in message:
            return Outcome(request_id, duration, error=message["error"])
        return Outcome(request_id, duration, result=message.get("result"))

    def stop(self, grace: float = 2.0) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class FunctionRuntime:
    """A function's pool of execution environments: reuses warm ones, starts more under concurrent load."""

    spec: FunctionSpec
    env: dict[str, str]
    output: Output
    region: str
    max_concurrency: int = 10
    report: bool = True
    stats: FunctionStats = field(default_factory=FunctionStats)

    def __post_init__(self) -> None:
        self.arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.spec.name}"
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._starting = 0
        self._stopping = False

    def _new_worker(self) -> Worker:
        worker = Worker(self.spec, self.env, self.output, self.arn)
        worker.start()
        with self._cond:
            self._all.append(worker)
        try:
            worker.wait_ready()
        except WorkerDied:
            self._forget(worker)
            raise
        with self._cond:
            stopping = self._stopping
        if stopping:  # started while the stack was shutting down: `stop` may not have seen it
            self._forget(worker)
            raise WorkerDied("the local stack is stopping")
        return worker

    def start_warm(self) -> Worker:
        """Start one environment and keep it idle; the stack is only ready once each function has one."""
        with self._cond:
            self._starting += 1
        try:
            worker = self._new_worker()
        finally:
            with self._cond:
                self._starting -= 1
        with self._cond:
            self._idle.append(worker)
            self._cond.notify()
        return worker

    def pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in self._all if w.pid is not None]

    def _acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._stopping:
                    raise WorkerDied("the local stack is stopping")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self.max_concurrency:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            worker = self._new_worker()
            with self._cond:
                self.stats.cold_starts += 1
            return worker
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify()

    def _release(self, worker: Worker) -> None:
        with self._cond:
            if self._stopping:
                return
            self._idle.append(worker)
            self._cond.notify()

    def _forget(self, worker: Worker) -> None:
        worker.kill()
        with self._cond:
            if worker in self._all:
                self._all.remove(worker)
            self._cond.notify()

    def _replace(self, worker: Worker) -> None:
        self._forget(worker)
        # Keep one warm environment, as the stack had at start, without making the failed caller wait for it.
        with self._cond:
            needed = not self._stopping and not self._all and self._starting == 0
        if needed:
            threading.Thread(target=self._start_warm_quietly, daemon=True).start()

    def _start_warm_quietly(self) -> None:
        try:
            self.start_warm()
        except WorkerDied as exc:
            self.output.line(self.spec.logical_id, f"could not restart the worker: {exc}")

    def invoke(self, event: Any) -> Outcome:
        request_id = str(uuid.uuid4())
        with self._cond:
            self.stats.invocations += 1
            self.stats.in_flight += 1
        try:
            outcome = self._invoke(event, request_id)
        finally:
            with self._cond:
                self.stats.in_flight -= 1
        if not outcome.ok:
            with self._cond:
                self.stats.errors += 1
        if self.report:
            status = "" if outcome.ok else f" Error: {(outcome.error or {}).get('errorType')}"
            self.output.line(
                self.spec.logical_id,
                f"REPORT RequestId: {request_id} Duration: {outcome.duration_ms:.2f} ms "
                f"Memory Size: {self.spec.memory} MB{status}",
            )
        return outcome

    def _invoke(self, event: Any, request_id: str) -> Outcome:
        started = time.monotonic()
        if len(json.dumps(event)) > MAX_PAYLOAD_BYTES:
            return Outcome(
                request_id,
                0.0,
                error={
                    "errorType": "RequestEntityTooLargeException",
                    "errorMessage": f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes "
                    "for the InvokeFunction operation",
                },
            )
        try:
            worker = self._acquire()
        except WorkerDied as exc:
            return Outcome(request_id, 0.0, error={"errorType": "Runtime.Unavailable", "errorMessage": str(exc)})
        try:
            outcome = worker.invoke(event, request_id, float(self.spec.timeout))
        except TimeoutError:
            with self._cond:
                self.stats.timeouts += 1
            self._replace(worker)
            elapsed = time.monotonic() - started
            message = f"RequestId: {request_id} Error: Task timed out after {elapsed:.2f} seconds"
            self.output.line(self.spec.logical_id, message)
            return Outcome(request_id, elapsed * 1000, error={"errorType": "Sandbox.Timedout", "errorMessage": message})
        except WorkerDied as exc:
            self._replace(worker)
            message = f"RequestId: {request_id} Error: Runtime exited ({exc})"
            return Outcome(
                request_id,
                (time.monotonic() - started) * 1000,
                error={"errorType": "Runtime.ExitError", "errorMessage": message},
            )
        self._release(worker)
        if outcome.ok and len(json.dumps(outcome.result)) > MAX_PAYLOAD_BYTES:
            return Outcome(
                request_id,
                outcome.duration_ms,
                error={
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": "Response payload size exceeded maximum allowed payload size "
                    f"({MAX_PAYLOAD_BYTES} bytes).",
                },
            )
        return outcome

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            workers = list(self._all)
            self._cond.notify_all()
        threads = [threading.Thread(target=w.stop) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
