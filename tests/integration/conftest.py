"""Integration fixtures: the template's resources in moto server, functions run in-process or in the local stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.aws import EmulatedAws, emulated_aws


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    with emulated_aws(tmp_path_factory.mktemp("emulated-aws")) as emulated:
        yield emulated
