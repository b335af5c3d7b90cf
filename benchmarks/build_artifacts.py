"""What `make build` made, measured as Lambda will run it: artifact sizes and each handler's import time.

Run after `make build`: `.venv/bin/python -m benchmarks.build_artifacts [--runs 7]`. It reads `.aws-sam/build`
(its template says which functions and layers there are), so `make bench` does not run it: that would need a SAM
build, and the SAM CLI, first.

1. Size: every file of the layer and of each function artifact, unzipped, against Lambda's limit of 250 MB for a
   function and all its layers together; the layer's largest parts; the zip each would upload (deflated).
2. Import time: each function's handler module imported as Lambda's Python runtime imports it: a fresh interpreter
   with no site-packages (`-I -S`), the function's folder first on `sys.path` (the task root, `/var/task`), then the
   layer's `python/` (`/opt/python`), the working directory the task root, and the environment the template gives the
   function (Globals merged with its own, resolved as the local stack resolves it) plus what Lambda sets (region, fake
   credentials, function name; tracing off, as no X-Ray daemon runs here). Median over fresh processes, interleaved,
   in two modes: `as_deployed` uses the bytecode the build ships and writes none (`-B`: Lambda's file system is
   read-only), `from_source` imports from a copy of the build without any, as every cold start would if the build
   shipped none (`sam build` alone ships none; `make build` compiles it). One more run with
   `-X importtime` splits the import as deployed by top-level package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import REGION, ROOT, median, pyplot, ratio, save_figure, write_results
from reclift_local.template import LAYER_TYPE, Resolver, function_specs, load_template

NAME = "build_artifacts"
DESCRIPTION = (
    "Unzipped size of the layer and of each function built by `make build`, against Lambda's 250 MB limit; median "
    "import time of each function's handler module in the built layout (layer on sys.path as /opt/python, the "
    "function folder as the task root, no site-packages), compiled from source as on Lambda and from bytecode."
)
BUILD_DIR = ROOT / ".aws-sam" / "build"
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000  # "250 MB" (MiB): a function and all its layers, unzipped
MIB = 2**20
RUNS = 7
TOP_PARTS = 8
MODES = ("as_deployed", "from_source")
# The environment Lambda sets that the handlers may read at import (the template's variables come on top).
LAMBDA_ENVIRONMENT = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}
# Runs in the fresh interpreter: imports the handler module and reports the time, and what it pulled in.
PROBE = """
import importlib, json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
started = time.perf_counter()
importlib.import_module(sys.argv[3])
elapsed = time.perf_counter() - started
tops = {name.partition(".")[0] for name in sys.modules}
print(json.dumps({"import_ms": elapsed * 1000, "modules": len(sys.modules), "top_level": sorted(tops)}))
"""
IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")
WATCHED_PACKAGES = ("numpy", "boto3", "botocore", "pynamodb", "pydantic", "aws_lambda_powertools")


@dataclass(frozen=True)
class Artifact:
    logical_id: str
    path: Path


# -------------------------------------------------------------------------------------------------------- sizes
def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of every regular file under `path`, symlinks not followed."""
    total = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            stat = os.lstat(Path(root) / name)
            if not os.path.islink(Path(root) / name):
                total, files = total + stat.st_size, files + 1
    return total, files


def bytecode_size(path: Path) -> int:
    """Bytes of the `.pyc` files under `path` (what `make build` adds to what `sam build` made)."""
    return sum(file.stat().st_size for file in path.rglob("*.pyc") if not file.is_symlink())


def zipped_size(path: Path) -> int:
    """The size of `path` as a deflated zip, the way `sam package` uploads it."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "artifact.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for root, _, names in os.walk(path):
                for name in sorted(names):
                    file = Path(root) / name
                    bundle.write(file, file.relative_to(path))
        return archive.stat().st_size


def largest_parts(layer_python: Path) -> dict[str, int]:
    """The layer's top-level entries (a package with its `.libs` and `.dist-info` counted together), largest first."""
    parts: Counter[str] = Counter()
    for entry in layer_python.iterdir():
        name = re.sub(r"(-[^-]+\.dist-info|-[^-]+\.data|\.libs|\.py)$", "", entry.name).lower().replace("-", "_")
        parts[name] += tree_size(entry)[0] if entry.is_dir() else entry.stat().st_size
    return dict(parts.most_common(TOP_PARTS))


# -------------------------------------------------------------------------------------------------------- imports
def probe(artifact: Path, layer_python: Path, module: str, environment: dict[str, str], flags: list[str]) -> Any:
    command = [sys.executable, "-I", "-S", *flags, "-c", PROBE, str(artifact), str(layer_python), module]
    done = subprocess.run(
        command, cwd=artifact, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} from {artifact} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def import_breakdown(stderr: str) -> dict[str, float]:
    """`-X importtime` output → milliseconds of self time per top-level package, largest first."""
    by_package: Counter[str] = Counter()  # microseconds
    for line in stderr.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match:
            by_package[match.group(4).partition(".")[0]] += int(match.group(1))
    return {name: round(us / 1000, 1) for name, us in by_package.most_common(TOP_PARTS)}


def measure_imports(
    layouts: dict[str, tuple[Path, Path]], module: str, environment: dict[str, str], runs: int
) -> dict[str, Any]:
    """`layouts`: per mode, the (task root, layer `python/`) to import from; `-B` everywhere, as nothing can be written
    on Lambda."""
    timings: dict[str, list[float]] = {mode: [] for mode in layouts}
    first, _ = probe(*layouts["as_deployed"], module, environment, ["-B"])
    for _ in range(runs):  # interleaved, so both modes see the same load on the machine
        for mode, (artifact, layer_python) in layouts.items():
            timings[mode].append(probe(artifact, layer_python, module, environment, ["-B"])[0]["import_ms"])
    _, stderr = probe(*layouts["as_deployed"], module, environment, ["-B", "-Ximporttime"])
    return {
        "import_ms": {mode: median(values) for mode, values in timings.items()},
        "from_source_over_as_deployed": ratio(median(timings["from_source"]), median(timings["as_deployed"])),
        "import_ms_runs": timings,
        "modules_loaded": first["modules"],
        "imports": {package: package in first["top_level"] for package in WATCHED_PACKAGES},
        "self_ms_by_package_as_deployed": import_breakdown(stderr),
    }


# ------------------------------------------------------------------------------------------------------------ main
def measure(runs: int) -> dict[str, Any]:
    built_template_path = BUILD_DIR / "template.yaml"
    if not built_template_path.is_file():
        raise SystemExit(f"{built_template_path.relative_to(ROOT)} is missing: run `make build` first")
    template = load_template(built_template_path)
    resources = template["Resources"]
    layers = [
        Artifact(logical_id, BUILD_DIR / str(resource["Properties"]["ContentUri"]))
        for logical_id, resource in resources.items()
        if resource["Type"] == LAYER_TYPE
    ]
    layer_figures: dict[str, dict[str, Any]] = {}
    for layer in layers:
        size, files = tree_size(layer.path)
        layer_figures[layer.logical_id] = {
            "unzipped_bytes": size,
            "bytecode_bytes": bytecode_size(layer.path),
            "files": files,
            "zipped_bytes": zipped_size(layer.path),
            "largest_parts_bytes": largest_parts(layer.path / "python"),
        }
    function_figures: dict[str, Any] = {}
    # The build as `sam build` alone leaves it: no bytecode (the few `.pyc` files wheels ship go too).
    with tempfile.TemporaryDirectory() as scratch:
        source_only = Path(scratch) / "build"
        shutil.copytree(BUILD_DIR, source_only, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for spec in function_specs(template, Resolver(template, region=REGION), BUILD_DIR):
            own_layers = [layer for layer in layers if (layer.path / "python").resolve() in spec.layer_dirs]
            assert len(own_layers) == 1, f"{spec.logical_id}: expected one layer of this template, got {own_layers}"
            layer = own_layers[0]
            size, files = tree_size(spec.code_dir)
            environment = {
                **LAMBDA_ENVIRONMENT,
                **spec.environment,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
            with_layers = size + layer_figures[layer.logical_id]["unzipped_bytes"]
            module = spec.handler.rpartition(".")[0]
            print(f"  {spec.logical_id}: importing {module} {runs} times in each mode", flush=True)
            function_figures[spec.logical_id] = {
                "unzipped_bytes": size,
                "bytecode_bytes": bytecode_size(spec.code_dir),
                "files": files,
                "zipped_bytes": zipped_size(spec.code_dir),
                "with_layers_unzipped_bytes": with_layers,
                "share_of_limit": with_layers / LAMBDA_UNZIPPED_LIMIT_BYTES,
                "layer": layer.logical_id,
                **measure_imports(
                    {
                        "as_deployed": (spec.code_dir, layer.path / "python"),
                        "from_source": (source_only / spec.code_dir.name, source_only / layer.path.name / "python"),
                    },
                    module,
                    environment,
                    runs,
                ),
            }
    return {"layers": layer_figures, "functions": function_figures}


def plot(figures: dict[str, Any], runs: int, load: float) -> None:
    plt = pyplot()
    functions = figures["functions"]
    names = [name.removesuffix("Function") for name in functions]
    fig, (sizes, imports) = plt.subplots(1, 2, figsize=(12, 4.5))
    sizes.barh(names, [item["with_layers_unzipped_bytes"] / MIB for item in functions.values()], color="C0")
    sizes.axvline(LAMBDA_UNZIPPED_LIMIT_BYTES / MIB, color="C3", linestyle="--", label="Lambda limit (250 MiB)")
    sizes.set_xlabel("MiB unzipped, function + layer")
    sizes.legend(loc="lower right")
    sizes.set_title("Deployment size")
    positions = range(len(names))
    for offset, mode, color in ((-0.2, "as_deployed", "C1"), (0.2, "from_source", "C2")):
        imports.barh(
            [position + offset for position in positions],
            [item["import_ms"][mode] for item in functions.values()],
            height=0.4,
            color=color,
            label=mode.replace("_", " "),
        )
    imports.set_yticks(list(positions), names)
    imports.set_xlabel(f"ms to import the handler module (median of {runs} fresh processes)")
    imports.legend(loc="best")
    imports.set_title(f"Handler import time (load average {load:.1f} on {os.cpu_count()} CPUs)")
    save_figure(fig, NAME)


def summary(figures: dict[str, Any]) -> list[str]:
    lines = [f"{NAME}:"]
    for logical_id, layer in figures["layers"].items():
        parts = ", ".join(f"{name} {size / MIB:.1f}" for name, size in list(layer["largest_parts_bytes"].items())[:4])
        lines.append(
            f"  {logical_id}: {layer['unzipped_bytes'] / MIB:.1f} MiB unzipped, "
            f"{layer['bytecode_bytes'] / MIB:.1f} MiB of it bytecode ({layer['zipped_bytes'] / MIB:.1f} MiB zipped, "
            f"{layer['files']} files); largest MiB: {parts}"
        )
    for logical_id, item in figures["functions"].items():
        heavy = [package for package, imported in item["imports"].items() if imported]
        lines.append(
            f"  {logical_id}: {item['unzipped_bytes'] / 1e3:.0f} kB, with layer "
            f"{item['with_layers_unzipped_bytes'] / MIB:.1f} MiB ({item['share_of_limit']:.0%} of 250 MiB); import "
            f"{item['import_ms']['as_deployed']:.0f} ms as deployed, {item['import_ms']['from_source']:.0f} ms "
            f"from source; imports {', '.join(heavy)}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.build_artifacts", description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"fresh processes per function and mode ({RUNS})")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    figures = measure(args.runs)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "build_dir": str(BUILD_DIR.relative_to(ROOT)),
            "runs": args.runs,
            "limit_bytes": LAMBDA_UNZIPPED_LIMIT_BYTES,
            "interpreter": f"{sys.executable} -I -S",
            "command": "make build && .venv/bin/python -m benchmarks.build_artifacts",
            "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        },
        figures=figures,
    )
    plot(figures, args.runs, load_before)
    print("\n".join(summary(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
