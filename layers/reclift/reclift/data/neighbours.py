"""How a product's neighbours are kept in DynamoDB: one item per product, sk `s#{product}`, its list as compact JSON
(one attribute, read and parsed in one go at serving time)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reclift.similarity import Neighbour

SIMILARITY_PREFIX = "s#"
# Neighbours outlive their run by a few days, so a failed night keeps serving yesterday's.
SIMILARITY_RETENTION_DAYS = 4


def similarity_sk(product_id: str) -> str:
    return f"{SIMILARITY_PREFIX}{product_id}"


def neighbours_json(neighbours: Sequence[Neighbour]) -> str:
    return json.dumps(
        [[n.product_id, round(n.jaccard, 6), round(n.support, 4), round(n.lift, 4)] for n in neighbours],
        separators=(",", ":"),
    )


def neighbours_from_json(raw: str | None) -> list[Neighbour]:
    return [Neighbour(str(row[0]), float(row[1]), float(row[2]), float(row[3])) for row in json.loads(raw or "[]")]


def scores_json(scores: Sequence[tuple[str, float]]) -> str:
    """A profile's combined neighbours: [[product, score], …]."""
    return json.dumps([[product, score] for product, score in scores], separators=(",", ":"))


def scores_from_json(raw: str | None) -> list[tuple[str, float]]:
    return [(str(row[0]), float(row[1])) for row in json.loads(raw or "[]")]
