"""docs/deployment.md keeps up with what it documents: every template parameter, the smoke steps, its own contents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reclift_local.smoke import STEPS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deployment.md"


def table_rows(text: str, heading: str) -> dict[str, str]:
    """The rows of the first table under `heading` whose first cell is a `code` name: name → the whole row."""
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return {line.split("|")[1].strip(" `"): line for line in section.splitlines() if line.startswith("| `")}


def shown_default(parameter: dict[str, Any]) -> str:
    default = parameter.get("Default")
    return "empty" if default in (None, "") else f"{default}"


def test_every_template_parameter_has_a_row_with_its_default(sam_template: dict[str, Any]) -> None:
    """Given template.yaml's Parameters, then the guide's parameter table has a row for each, showing its default;
    a parameter added to the template without its row, or a default changed without the guide, fails here."""
    rows = table_rows(GUIDE.read_text(encoding="utf-8"), "Template parameters")
    for name, parameter in sam_template["Parameters"].items():
        assert name in rows, f"docs/deployment.md's parameter table lacks {name}"
        cells = [cell.strip(" `") for cell in rows[name].split("|")]
        assert cells[2].startswith(shown_default(parameter)), f"{name}: default {shown_default(parameter)!r} not shown"


def test_the_parameter_table_names_no_parameter_the_template_lacks(sam_template: dict[str, Any]) -> None:
    rows = table_rows(GUIDE.read_text(encoding="utf-8"), "Template parameters")
    assert set(rows) <= set(sam_template["Parameters"]), set(rows) - set(sam_template["Parameters"])


def test_every_output_the_guide_relies_on_is_a_template_output(sam_template: dict[str, Any]) -> None:
    rows = table_rows(GUIDE.read_text(encoding="utf-8"), "What you end up with")
    assert set(rows) == {"ApiUrl", "WebhookUrl", "AppProxyUrl"}
    assert set(rows) <= set(sam_template["Outputs"])


def test_the_smoke_table_describes_every_step_make_smoke_prints() -> None:
    rows = table_rows(GUIDE.read_text(encoding="utf-8"), "Verify with make smoke")
    assert list(rows) == list(STEPS)


def github_anchor(heading: str) -> str:
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_every_contents_entry_and_section_link_leads_to_a_heading() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    anchors = {github_anchor(line) for line in text.splitlines() if line.startswith("## ")}
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"\]\(#([^)]+)\)", contents)
    assert listed == [github_anchor(f"## {h}") for h in re.findall(r"^\d+\. \[([^\]]+)\]", contents, re.M)]
    assert set(listed) == anchors - {"contents"}
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors, f"link to #{target}, which is no heading"


def test_the_readme_points_to_the_guide() -> None:
    assert "(docs/deployment.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


LAMBDA_MINIMUM_UNRESERVED = 100  # executions Lambda keeps unreserved in every account


def test_the_reservation_totals_the_guide_and_the_runbook_state_are_the_templates_defaults(
    sam_template: dict[str, Any],
) -> None:
    """The guide tells a new account how much concurrency the defaults reserve and what quota they need; a
    reservation added or changed in the template without these figures fails here."""
    total = sum(
        int(parameter["Default"])
        for name, parameter in sam_template["Parameters"].items()
        if name.endswith("ReservedConcurrency")
    )
    guide = GUIDE.read_text(encoding="utf-8")
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    stated = [
        *re.findall(r"reserve concurrency by default \((\d+) executions in all", guide),
        *re.findall(r"The reservations add up to (\d+) concurrent executions", guide),
        *re.findall(r"The defaults reserve (\d+) executions", runbook),
    ]
    assert len(stated) == 3, "a stated total of the default reservations is no longer found"
    assert [int(number) for number in stated] == [total] * 3, f"the defaults reserve {total}"
    (quota,) = re.findall(r"Below ([\d,]+), either ask for a quota increase", guide)
    assert int(quota.replace(",", "")) == total + LAMBDA_MINIMUM_UNRESERVED
