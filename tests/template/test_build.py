"""`make build` installs the shared layer from its lock for the Lambda platform template.yaml declares.

Every locked dependency is a wheel that runs there (python3.11 runs on Amazon Linux 2, glibc 2.26: manylinux2014
wheels, not the manylinux_2_28 ones numpy 2.3 and later ship), the lock was resolved for that platform, its pins agree
with each other (the layer's boto3 with the layer's botocore), and the development venv runs the same versions.
The platform is read from the template: a new runtime or architecture there makes these tests ask for a new lock.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[2]
LAYER_SOURCE = ROOT / "layers" / "reclift"
LOCK = LAYER_SOURCE / "requirements.txt"  # what `sam build` installs into the layer
DIRECT = LAYER_SOURCE / "requirements.in"  # what `make lock` resolves
CONSTRAINTS = LAYER_SOURCE / "constraints.txt"  # the lock without hashes, for requirements-dev.txt

# The glibc of each Python runtime's operating system (Amazon Linux 2 up to python3.11, Amazon Linux 2023 from
# python3.12), as `sam build` (aws-lambda-builders) reads it to choose wheels.
RUNTIME_GLIBC = {
    "python3.9": (2, 26),
    "python3.10": (2, 26),
    "python3.11": (2, 26),
    "python3.12": (2, 34),
    "python3.13": (2, 34),
}
WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's architecture names → wheel platform tags'
LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
# pip's words for a registry it could not reach (as opposed to one that answered without a fitting wheel).
UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|ConnectTimeoutError|ProxyError|"
    r"ReadTimeoutError|SSLError"
)


# ---------------------------------------------------------------------------------------------------------- platform
@dataclass(frozen=True)
class LambdaPlatform:
    """A Lambda Python runtime on one architecture, as wheel tags see it."""

    runtime: str  # "python3.11"
    architecture: str  # "x86_64" | "arm64"

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.runtime.removeprefix("python").split(".")
        return int(major), int(minor)

    @property
    def abi(self) -> str:
        return "cp{}{}".format(*self.python_version)

    @property
    def glibc(self) -> tuple[int, int]:
        return RUNTIME_GLIBC[self.runtime]

    @property
    def wheel_arch(self) -> str:
        return WHEEL_ARCH[self.architecture]

    @property
    def pip_platforms(self) -> list[str]:
        """`pip download --platform` values: every manylinux policy this glibc runs (pip adds the older aliases)."""
        policies = [f"manylinux_2_{minor}_{self.wheel_arch}" for minor in (34, 28) if (2, minor) <= self.glibc]
        return [*policies, f"manylinux2014_{self.wheel_arch}"]

    @cached_property
    def tags(self) -> frozenset[Tag]:
        """Every wheel tag the runtime loads: CPython's own ABI, abi3, pure Python; manylinux up to its glibc."""
        platforms = [f"manylinux_2_{minor}_{self.wheel_arch}" for minor in range(self.glibc[1], 4, -1)]
        platforms += [f"{name}_{self.wheel_arch}" for name, glibc in LEGACY_MANYLINUX.items() if glibc <= self.glibc]
        return frozenset(cpython_tags(self.python_version, [self.abi], platforms)) | frozenset(
            compatible_tags(self.python_version, self.abi, platforms)
        )


def function_platforms(sam_template: dict[str, Any]) -> set[tuple[str, str]]:
    """(runtime, architecture) of every function: its own properties, else the template's Globals, else Lambda's."""
    defaults = (sam_template.get("Globals") or {}).get("Function") or {}
    found: set[tuple[str, str]] = set()
    for resource in sam_template["Resources"].values():
        if resource["Type"] != FUNCTION_TYPE:
            continue
        properties = resource.get("Properties") or {}
        runtime = properties.get("Runtime", defaults.get("Runtime"))
        architectures = properties.get("Architectures", defaults.get("Architectures", ["x86_64"]))
        found |= {(str(runtime), str(architecture)) for architecture in architectures}
    return found


@pytest.fixture(scope="session")
def lambda_platform(sam_template: dict[str, Any]) -> LambdaPlatform:
    platforms = function_platforms(sam_template)
    assert len(platforms) == 1, f"one layer serves every function, but they run on {sorted(platforms)}"
    runtime, architecture = platforms.pop()
    assert runtime in RUNTIME_GLIBC, f"{runtime} is not a Python runtime these tests know the glibc of"
    assert architecture in WHEEL_ARCH, f"{architecture} is not a Lambda architecture"
    return LambdaPlatform(runtime, architecture)


# ------------------------------------------------------------------------------------------------------------ lock
@dataclass(frozen=True)
class Pin:
    version: str
    hashes: tuple[str, ...]


def read_pins(path: Path) -> dict[str, Pin]:
    """`name==version` lines (with their `--hash` continuations) of a requirements file, by canonical name."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))  # join continuation lines
    pins: dict[str, Pin] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement, *options = line.split()
        name, separator, version = requirement.partition("==")
        assert separator, f"{path.name}: {requirement} is not pinned with =="
        hashes = tuple(option.removeprefix("--hash=") for option in options if option.startswith("--hash="))
        pins[canonicalize_name(name)] = Pin(version, hashes)
    return pins


def lock_command() -> list[str]:
    """The `uv pip compile` command the lock's header records (put there by `make lock`)."""
    header = LOCK.read_text(encoding="utf-8").split("\n\n", 1)[0]
    match = re.search(r"^#\s+make lock, which runs uv [\d.]+: (uv pip compile .*)$", header, re.MULTILINE)
    assert match, f"{LOCK.name} does not start with the command that made it; regenerate it with `make lock`"
    return shlex.split(match.group(1))


def option(command: list[str], name: str) -> str:
    assert name in command, f"the lock was made without {name}: {shlex.join(command)}"
    return command[command.index(name) + 1]


def uv_platform_glibc(uv_platform: str) -> tuple[str, tuple[int, int]]:
    """`x86_64-manylinux2014` → ("x86_64", (2, 17)); `aarch64-manylinux_2_28` → ("aarch64", (2, 28))."""
    arch, _, policy = uv_platform.partition("-")
    if policy in LEGACY_MANYLINUX:
        return arch, LEGACY_MANYLINUX[policy]
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)", policy)
    assert match, f"--python-platform {uv_platform} is not a manylinux platform"
    return arch, (int(match.group(1)), int(match.group(2)))


@pytest.fixture(scope="session")
def locked() -> dict[str, Pin]:
    return read_pins(LOCK)


# ----------------------------------------------------------------------------------------------------------- tests
def test_the_layer_is_built_for_the_runtime_and_architecture_every_function_runs_on(
    sam_template: dict[str, Any], lambda_platform: LambdaPlatform
) -> None:
    """Given the functions' runtime, when `sam build` builds the layer, it uses that runtime's pip and tags."""
    layers = {
        logical_id: resource
        for logical_id, resource in sam_template["Resources"].items()
        if resource["Type"] == LAYER_TYPE
    }
    assert layers, "the template declares no layer"
    for logical_id, layer in layers.items():
        properties = layer.get("Properties") or {}
        assert (layer.get("Metadata") or {}).get("BuildMethod") == lambda_platform.runtime, logical_id
        assert lambda_platform.runtime in properties.get("CompatibleRuntimes", []), logical_id
        assert lambda_platform.architecture in properties.get("CompatibleArchitectures", ["x86_64"]), logical_id


def test_the_lock_was_resolved_for_the_templates_runtime_and_architecture(lambda_platform: LambdaPlatform) -> None:
    """The lock's own header says for which Python and platform it was resolved: the template's, or an older glibc."""
    command = lock_command()
    python_version = tuple(int(part) for part in option(command, "--python-version").split("."))
    assert python_version == lambda_platform.python_version, (
        f"the lock is for Python {python_version}, the template runs {lambda_platform.runtime}: run `make lock`"
    )
    arch, glibc = uv_platform_glibc(option(command, "--python-platform"))
    assert arch == lambda_platform.wheel_arch, (
        f"the lock is for {arch}, the template runs {lambda_platform.architecture}"
    )
    assert glibc <= lambda_platform.glibc, (
        f"the lock assumes glibc {glibc}, {lambda_platform.runtime} has {lambda_platform.glibc}"
    )
    assert option(command, "--only-binary") == ":all:"
    assert "--generate-hashes" in command
    assert Path(option(command, "--output-file")) == LOCK.relative_to(ROOT)


def test_every_locked_dependency_is_pinned_with_its_hashes_and_the_lock_is_current(locked: dict[str, Pin]) -> None:
    """Every line of the lock pins one version with hashes (so pip checks them); the direct pins are the lock's; the
    constraints the development venv installs with are the lock's pins, without hashes."""
    unhashed = sorted(name for name, pin in locked.items() if not pin.hashes)
    assert not unhashed, f"locked without a hash: {unhashed}"
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for pin in locked.values() for digest in pin.hashes)
    stale = {
        name: (pin.version, locked[name].version if name in locked else None)
        for name, pin in read_pins(DIRECT).items()
        if name not in locked or locked[name].version != pin.version
    }
    assert not stale, f"requirements.in and the lock disagree (in, lock): {stale}; run `make lock`"
    constraints = {name: pin.version for name, pin in read_pins(CONSTRAINTS).items()}
    assert constraints == {name: pin.version for name, pin in locked.items()}, "run `make lock`"


def test_every_locked_dependency_accepts_the_locked_versions_of_what_it_requires(
    locked: dict[str, Pin], lambda_platform: LambdaPlatform
) -> None:
    """The lock is closed and consistent on Lambda: whatever a locked package requires there (boto3's botocore,
    s3transfer and jmespath among them) is locked too, at a version it accepts. Read from the installed metadata, which
    is the locked versions' (see the next test)."""
    environment = {
        "python_version": "{}.{}".format(*lambda_platform.python_version),
        "python_full_version": "{}.{}.0".format(*lambda_platform.python_version),
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": lambda_platform.architecture,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "extra": "",
    }
    problems: list[str] = []
    for name in locked:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed, so its requirements cannot be read: run `make install`")
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            needed = canonicalize_name(requirement.name)
            if needed not in locked:
                problems.append(f"{name} requires {requirement}, which is not locked")
            elif not requirement.specifier.contains(locked[needed].version, prereleases=True):
                problems.append(f"{name} requires {requirement}, the lock has {locked[needed].version}")
    assert not problems, "\n".join(problems)


def test_the_development_venv_runs_the_layers_locked_versions(locked: dict[str, Pin]) -> None:
    """The tests import what Lambda imports: requirements-dev.txt holds the venv to the lock (`make install`)."""
    installed: dict[str, str | None] = {}
    for name in locked:
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed[name] = None
    differ = {name: (installed[name], pin.version) for name, pin in locked.items() if installed[name] != pin.version}
    assert not differ, f"installed vs locked: {differ}; run `make install`"


def test_every_locked_dependency_downloads_as_a_wheel_the_lambda_runtime_loads(
    locked: dict[str, Pin], lambda_platform: LambdaPlatform, tmp_path: Path
) -> None:
    """Given the lock, when pip fetches it the way `sam build` does (wheels only, for the Lambda platform, hashes
    checked), then every locked package comes as one wheel of the locked version whose tags the runtime loads."""
    command = [
        *(sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"),
        *("--retries", "1", "--timeout", "30"),
        *("--only-binary=:all:", "--implementation", "cp", "--abi", lambda_platform.abi),
        *("--python-version", "{}.{}".format(*lambda_platform.python_version)),
        *(argument for platform in lambda_platform.pip_platforms for argument in ("--platform", platform)),
        *("--dest", str(tmp_path), "--requirement", str(LOCK)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        unreachable = UNREACHABLE.search(done.stdout + done.stderr)
        if unreachable:
            pytest.skip(f"the package registry cannot be reached ({unreachable.group(0)}): the lock was not checked")
        pytest.fail(f"pip cannot fetch the lock for {lambda_platform}:\n{done.stderr[-4000:]}", pytrace=False)

    files = sorted(path.name for path in tmp_path.iterdir())
    assert all(name.endswith(".whl") for name in files), files
    wheels = {canonicalize_name(parse_wheel_filename(name)[0]): parse_wheel_filename(name) for name in files}
    assert {name: str(wheel[1]) for name, wheel in wheels.items()} == {
        name: pin.version for name, pin in locked.items()
    }
    unloadable = sorted(name for name in files if not parse_wheel_filename(name)[3] & lambda_platform.tags)
    assert not unloadable, (
        f"wheels {lambda_platform.runtime} on {lambda_platform.architecture} cannot load: {unloadable}"
    )
