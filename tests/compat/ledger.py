"""Checks of the gateway's own record of a request: the generation (`GET /api/v1/generation`)
and its audit record (`switchyard audit export`)."""

from decimal import Decimal

import pytest

# The audit record's `format` for each client-facing API.
AUDIT_FORMAT = {"chat": "chat", "messages": "messages", "responses": "responses",
                "embeddings": "embeddings", "completions": "completions"}


def assert_recorded(gateway, gen_id, *, api, model, cost, requested=None, streamed=None):
    """The generation `gen_id` is recorded with `model` and `cost` (USD), and has one audit record
    of `api`'s format, served by `model`, with the same cost. Returns the audit record."""
    assert gen_id and gen_id.startswith("gen-"), f"not a generation id: {gen_id!r}"
    generation = gateway.generation(gen_id)
    assert generation["id"] == gen_id
    assert generation["model"] == model
    assert generation["total_cost"] == pytest.approx(cost)
    if streamed is not None:
        assert generation["streamed"] is streamed
    record = gateway.audit_record(gen_id)
    assert record["kind"] == "inference"
    assert record["format"] == AUDIT_FORMAT[api]
    assert record["status"] == 200
    assert record["error"] is None
    assert record["served"]["model"] == model
    # The record's cost is an exact decimal; `cost` may carry float rounding from the test's sum.
    assert Decimal(record["cost"]) == Decimal(str(cost)).quantize(Decimal("1e-12"))
    if requested is not None:
        assert record["requested_model"] == requested
    return record


def records_since(gateway, count_before, **match):
    """The audit records written after the first `count_before` whose fields equal `match`."""
    return [r for r in gateway.audit_records()[count_before:]
            if r.get("kind") == "inference" and all(r.get(k) == v for k, v in match.items())]
