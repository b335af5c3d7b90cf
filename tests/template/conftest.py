"""Fixtures for the template tests: `template.yaml` as written, its offline SAM transform, cfn-lint's findings on the
result, and what each function's code reads from its environment and asks of the data-access port.

Everything is computed once per session (the transform and the lint take about two seconds together).
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

from reclift_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
LAYER_SOURCE = ROOT / "layers" / "reclift"
REGION = "us-east-1"
PLACEHOLDER_S3_URI = "s3://bucket/key"
# The properties `sam build` / `sam package` turn from a local folder into an S3 location.
LOCAL_CODE_PROPERTIES = ("CodeUri", "ContentUri")

# cfn-lint rules that may fire without failing the suite, each with the reason.
TOLERATED_LINT_RULES = frozenset(
    {
        # I3011 asks for an explicit DeletionPolicy/UpdateReplacePolicy on every stateful resource. Every table has
        # them (test_template holds it: the merchant's data retained, the idempotency table deleted); queues and log
        # groups are meant to go with the stack, CloudFormation's default.
        "I3011",
    }
)


# ------------------------------------------------------------------------------------------------------- transform
class OfflineManagedPolicyLoader:
    """Stands in for `samtranslator`'s `ManagedPolicyLoader`, which lists IAM's managed policies through boto3.

    The translator only asks for that name→ARN map when a `Policies` entry names a managed policy by bare name; the
    template gives statements or ARNs, so an empty map is the whole truth and no AWS call is ever made. A bare
    managed-policy name added later fails the transform here, which is the point: the test stays offline.
    """

    def load(self) -> dict[str, str]:
        return {}


def with_placeholder_code_uris(sam_template: dict[str, Any]) -> dict[str, Any]:
    """A deep copy whose local `CodeUri`/`ContentUri` folders are S3 URIs, as after `sam package`."""
    packaged = copy.deepcopy(sam_template)
    for resource in packaged.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for name in LOCAL_CODE_PROPERTIES:
            if isinstance(properties.get(name), str) and not properties[name].startswith("s3://"):
                properties[name] = PLACEHOLDER_S3_URI
    return packaged


def sam_transform(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template that the `AWS::Serverless-2016-10-31` transform makes of `sam_template`, offline."""
    with pytest.MonkeyPatch.context() as env:
        # The translator asks a boto3 session for the region and partition; nothing else of AWS is touched.
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.delenv("AWS_REGION", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        try:
            result = transform(with_placeholder_code_uris(sam_template), {}, OfflineManagedPolicyLoader())
        except InvalidDocumentException as exc:
            causes = "\n".join(f"- {cause.message}" for cause in exc.causes)
            pytest.fail(f"the SAM transform of {TEMPLATE_PATH.name} failed:\n{causes}", pytrace=False)
    assert isinstance(result, dict)
    return result


LintFinding = tuple[str, str]  # (rule id, "at <path>: <message>")


def cfn_lint(cfn_template: dict[str, Any]) -> list[LintFinding]:
    """cfn-lint's findings (errors, warnings and informational ones) on a CloudFormation template, for `REGION`."""
    matches = lint(json.dumps(cfn_template), config=ManualArgs(regions=[REGION], include_checks=["I"]))
    return [
        (match.rule.id, f"at {'/'.join(str(part) for part in match.path or [])}: {match.message}") for match in matches
    ]


def lint_sam_template(sam_template: dict[str, Any]) -> list[LintFinding]:
    """Transform, then lint: the gate every version of the template goes through."""
    return cfn_lint(sam_transform(sam_template))


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    """`template.yaml` as written, short tags in their long JSON form (`!Ref X` → `{"Ref": "X"}`)."""
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def cfn_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template CloudFormation would deploy."""
    return sam_transform(sam_template)


@pytest.fixture(scope="session")
def lint_findings(cfn_template: dict[str, Any]) -> list[LintFinding]:
    return cfn_lint(cfn_template)


@pytest.fixture(scope="session")
def tolerated_lint_rules() -> frozenset[str]:
    return TOLERATED_LINT_RULES


@pytest.fixture(scope="session")
def lint_gate() -> Callable[[dict[str, Any]], list[LintFinding]]:
    """Transform and lint any SAM template (a test's own variant of template.yaml)."""
    return lint_sam_template


# ------------------------------------------------------------------------------------------- what the code reads
MODULE_SCOPE = "<module>"
SymbolId = tuple[str, str]  # (module, top-level name); MODULE_SCOPE stands for the module's own top-level code


@dataclass
class _Symbol:
    env_names: set[str] = field(default_factory=set)  # variable names read with a literal
    env_patterns: list[tuple[int, str]] = field(default_factory=list)  # (argument index, "{}_PARAM")
    refs: set[SymbolId] = field(default_factory=set)
    literal_calls: list[tuple[SymbolId, list[str | None]]] = field(default_factory=list)
    method_calls: set[str] = field(default_factory=set)


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _layer_modules() -> dict[str, Path]:
    return {_module_name(path, LAYER_SOURCE): path for path in sorted((LAYER_SOURCE / "reclift").rglob("*.py"))}


def _is_os_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _dotted(node.value) == "os"


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _ModuleScan:
    """One module's top-level symbols: the variables each reads, the names it refers to, the calls it makes."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.imports: dict[str, SymbolId] = {}
        self.symbols: dict[str, _Symbol] = {MODULE_SCOPE: _Symbol()}
        self._collect_imports()
        for statement in self.tree.body:
            self._scan_statement(statement)

    def _collect_imports(self) -> None:
        is_package = self.name in _layer_modules() and _layer_modules()[self.name].stem == "__init__"
        package = self.name if is_package else self.name.rpartition(".")[0]
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0],
                        MODULE_SCOPE,
                    )
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    source = f"{anchor}.{source}" if source else anchor
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    target = (submodule, MODULE_SCOPE) if submodule in _layer_modules() else (source, alias.name)
                    self.imports[alias.asname or alias.name] = target

    def _scan_statement(self, statement: ast.stmt) -> None:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [statement.name]
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names = [target.id for target in targets if isinstance(target, ast.Name)] or [MODULE_SCOPE]
        else:
            names = [MODULE_SCOPE]
        for name in names:
            symbol = self.symbols.setdefault(name, _Symbol())
            self._scan_body(statement, symbol)

    def resolve(self, node: ast.expr) -> SymbolId | None:
        """The symbol a name or `module.name` expression refers to, if it is one of ours."""
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return (self.name, node.id)
            return self.imports.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = self.imports.get(node.value.id)
            if target is not None and target[1] == MODULE_SCOPE:
                return (target[0], node.attr)
        return None

    def _scan_body(self, statement: ast.stmt, symbol: _Symbol) -> None:
        parameters: list[str] = []
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            parameters = [arg.arg for arg in [*statement.args.posonlyargs, *statement.args.args]]
        for node in ast.walk(statement):
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                target = self.resolve(node)
                if target is not None:
                    symbol.refs.add(target)
            key: ast.expr | None = None
            if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
                key = node.slice
            elif isinstance(node, ast.Call):
                function = _dotted(node.func)
                if isinstance(node.func, ast.Attribute) and _is_os_environ(node.func.value) and node.args:
                    key = node.args[0]  # os.environ.get(...), os.environ.pop(...), os.environ.setdefault(...)
                elif function == "os.getenv" and node.args:
                    key = node.args[0]
                else:
                    self._scan_call(node, symbol)
            if key is not None:
                self._record_key(key, parameters, symbol)

    def _scan_call(self, node: ast.Call, symbol: _Symbol) -> None:
        if isinstance(node.func, ast.Attribute):
            symbol.method_calls.add(node.func.attr)
        target = self.resolve(node.func)
        if target is not None:
            literals = [
                arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None for arg in node.args
            ]
            symbol.literal_calls.append((target, literals))

    @staticmethod
    def _record_key(key: ast.expr, parameters: list[str], symbol: _Symbol) -> None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            symbol.env_names.add(key.value)
        elif isinstance(key, ast.Name) and key.id in parameters:
            symbol.env_patterns.append((parameters.index(key.id), "{}"))
        elif isinstance(key, ast.JoinedStr):
            pattern, index = "", None
            for part in key.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    pattern += part.value.replace("{", "{{").replace("}", "}}")
                elif (
                    isinstance(part, ast.FormattedValue)
                    and isinstance(part.value, ast.Name)
                    and part.value.id in parameters
                    and index is None
                ):
                    pattern, index = pattern + "{}", parameters.index(part.value.id)
                else:
                    return
            if index is not None:
                symbol.env_patterns.append((index, pattern))


@cache
def _scan(module: str, path: Path) -> _ModuleScan:
    return _ModuleScan(module, path)


def _lookup(symbol_id: SymbolId) -> tuple[_ModuleScan, _Symbol] | None:
    """Finds a symbol, following re-exports (`from reclift.x import y` in another module's namespace)."""
    for _ in range(10):
        module, name = symbol_id
        path = _layer_modules().get(module)
        if path is None:
            return None
        scan = _scan(module, path)
        if name in scan.symbols:
            return scan, scan.symbols[name]
        if name not in scan.imports:
            return None
        symbol_id = scan.imports[name]
    return None


@dataclass(frozen=True)
class CodeUse:
    """What one function's code can reach: the environment variables it reads and the port methods it calls."""

    env_names: frozenset[str]
    method_calls: frozenset[str]


def code_use(handler_file: Path) -> CodeUse:
    """Follows a handler module through the shared package, symbol by symbol, from everything the module defines.

    Reached: a top-level function, class or assignment that reached code names (directly, as `module.name`, or
    through a re-export), and the top-level code of its module, which runs on import. Environment variables are read
    as `os.environ[...]`, `os.environ.get(...)` or `os.getenv(...)`: a literal name is recorded where it is read; a
    name made from a parameter (`os.environ.get(name)`, `os.environ.get(f"{name}_PARAM")`) is recorded at each
    reached call that passes a literal (`config.required("WEBHOOK_QUEUE_URL")`). It is a reading of the source, not
    of a run: it can only over-approximate (a reached function's every branch counts), which errs on the side of
    asking the template for more.
    """
    entry = _ModuleScan(f"handler:{handler_file.parent.name}", handler_file)
    pending: list[_Symbol] = list(entry.symbols.values())
    seen: set[int] = set()
    env_names: set[str] = set()
    method_calls: set[str] = set()
    while pending:
        symbol = pending.pop()
        if id(symbol) in seen:
            continue
        seen.add(id(symbol))
        env_names |= symbol.env_names
        method_calls |= symbol.method_calls
        for target, literals in symbol.literal_calls:
            found = _lookup(target)
            if found is None:
                continue
            for index, pattern in found[1].env_patterns:
                if index < len(literals) and literals[index] is not None:
                    env_names.add(pattern.format(literals[index]))
        for target in symbol.refs:
            found = _lookup(target)
            if found is not None:
                pending += [found[1], found[0].symbols[MODULE_SCOPE]]
    return CodeUse(env_names=frozenset(env_names), method_calls=frozenset(method_calls))


def _handler_file(sam_template: dict[str, Any], function_id: str) -> Path:
    properties = sam_template["Resources"][function_id]["Properties"]
    module = str(properties["Handler"]).rsplit(".", 1)[0]
    return ROOT / str(properties["CodeUri"]) / (module.replace(".", "/") + ".py")


@pytest.fixture(scope="session")
def handler_files(sam_template: dict[str, Any]) -> dict[str, Path]:
    """Per serverless function (logical id): the file its `Handler` names, under its `CodeUri`."""
    return {
        logical_id: _handler_file(sam_template, logical_id)
        for logical_id, resource in sam_template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="session")
def code_uses(handler_files: dict[str, Path]) -> dict[str, CodeUse]:
    return {function_id: code_use(path) for function_id, path in handler_files.items() if path.is_file()}


@pytest.fixture(scope="session")
def env_reads(code_uses: dict[str, CodeUse]) -> dict[str, frozenset[str]]:
    """Per function: the environment variables its code can read (see `code_use`)."""
    return {function_id: use.env_names for function_id, use in code_uses.items()}


@pytest.fixture(scope="session")
def method_calls(code_uses: dict[str, CodeUse]) -> dict[str, frozenset[str]]:
    """Per function: the names of the methods its code can call (`store.put_events(...)` → `put_events`)."""
    return {function_id: use.method_calls for function_id, use in code_uses.items()}
