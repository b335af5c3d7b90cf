"""Scheduled work fanned out one message per shop, and those messages read back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from reclift.ids import shop_domain
from reclift.logic.deliveries import UnprocessableDelivery

Job = TypeVar("Job", bound=BaseModel)


def fan_out(shops: Iterable[str], job: Callable[[str], BaseModel], send: Callable[[list[str]], int]) -> int:
    """One message per known shop: ten thousand shops are ten thousand small invocations. Returns the count sent."""
    return send([job(shop).model_dump_json() for shop in shops])


def parse_job(body: str, model: type[Job]) -> Job:
    """The queued job, or UnprocessableDelivery (the message stays on the queue, then the DLQ)."""
    try:
        job = model.model_validate(json.loads(body))
        shop_domain(str(getattr(job, "shop", "")))
    except (ValueError, ValidationError) as exc:
        raise UnprocessableDelivery(f"the message is not a {model.__name__} job") from exc
    return job
