"""The sync envelope and per-item results."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sync.normalise import ItemError
from sync.wire import MAX_READINGS, ItemResult, ItemStatus, SourceIn, SyncRequest

SOURCE: dict[str, Any] = {
    "id": "allan-phone-7f3a",
    "kind": "app",
    "name": "Min hälsa",
    "version": "2.3.1",
    "device": {"manufacturer": "Omron", "model": "M7"},
}


def test_design_example_parses() -> None:
    request = SyncRequest.model_validate(
        {"source": SOURCE, "readings": [{"client_id": "a"}, 5, "x"], "cursor": None}
    )
    assert request.source.kind == "app"
    assert request.source.device is not None and request.source.device.model == "M7"
    # Items stay raw: each one is judged alone by normalise_reading.
    assert request.readings == [{"client_id": "a"}, 5, "x"]


@pytest.mark.parametrize(
    "change",
    [
        {"id": ""},
        {"id": "x" * 129},
        {"id": "allan phone"},
        {"id": "allan/phone"},
        {"kind": "robot"},
        {"name": "x" * 201},
        {"device": {"manufacturer": "Omron"}},
        {"device": {"manufacturer": "Omron", "model": "M7", "serial": "1"}},
        {"patient_id": "someone"},
    ],
)
def test_invalid_sources(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SourceIn.model_validate({**SOURCE, **change})


def test_a_source_needs_only_id_and_kind() -> None:
    source = SourceIn.model_validate({"id": "allan-phone", "kind": "app"})
    assert (source.name, source.version, source.device) == ("", None, None)


def test_source_id_characters() -> None:
    source = SourceIn.model_validate({**SOURCE, "id": "a.B_c:d-9", "kind": "import"})
    assert source.kind == "import" and source.version == "2.3.1"
    assert SourceIn.model_validate({"id": "x", "kind": "manual", "name": "Karin"}).device is None


def test_batch_size_limit() -> None:
    SyncRequest.model_validate({"source": SOURCE, "readings": [{}] * MAX_READINGS})
    with pytest.raises(ValidationError):
        SyncRequest.model_validate({"source": SOURCE, "readings": [{}] * (MAX_READINGS + 1)})
    with pytest.raises(ValidationError):
        SyncRequest.model_validate({"source": SOURCE, "readings": [], "patient_id": "p"})
    with pytest.raises(ValidationError):
        SyncRequest.model_validate({"source": SOURCE, "readings": {}})


def test_item_results_serialise_like_the_design() -> None:
    created = ItemResult(client_id="a", status=ItemStatus.created, id="r1")
    assert created.model_dump(mode="json", exclude_none=True) == {
        "client_id": "a",
        "status": "created",
        "id": "r1",
    }
    rejected = ItemResult.rejected(
        "b", [ItemError(loc="value.systolic", code="implausible", message="too high")]
    )
    assert rejected.model_dump(mode="json", exclude_none=True) == {
        "client_id": "b",
        "status": "rejected",
        "errors": [{"loc": "value.systolic", "code": "implausible", "message": "too high"}],
    }
    with pytest.raises(ValidationError):
        ItemResult(client_id="c", status=ItemStatus.rejected, errors=[])
