"""The edge producer's record and headers, read back by the pipeline's own decoder, and its
--gallery option (no broker: `identify` is replaced)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clients import edge_producer
from core import image_records
from core.kafka import header_map
from schemas.envelope import Header
from schemas.events import IdentifyFace

JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes"


def test_the_record_is_an_identify_command_of_its_gallery() -> None:
    record = edge_producer.identify_record(JPEG, request_id="r1", camera="gate-3", gallery="watchlist")
    assert image_records.is_binary(record)
    envelope = image_records.decode(record, IdentifyFace)
    assert isinstance(envelope.payload, IdentifyFace)
    assert (envelope.payload.gallery, envelope.payload.request_id, envelope.payload.source) == (
        "watchlist",
        "r1",
        "gate-3",
    )
    assert envelope.payload.image == JPEG and envelope.correlation_id == "r1"


def test_without_a_gallery_the_record_is_the_default_gallery_s() -> None:
    envelope = image_records.decode(
        edge_producer.identify_record(JPEG, request_id="r", camera="c"), IdentifyFace
    )
    assert envelope.payload.gallery == "default"


def test_the_gallery_header_is_written_only_for_another_gallery() -> None:
    default = header_map(edge_producer.record_headers("r1"))
    assert default == {"correlation_id": "r1", "event_type": "IdentifyFace"}
    other = header_map(edge_producer.record_headers("r1", "watchlist"))
    assert other[Header.GALLERY] == "watchlist" and other["correlation_id"] == "r1"


def run_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> dict[str, Any]:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JPEG)
    seen: dict[str, Any] = {}

    async def fake_identify(image: bytes, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, image=image)
        return {"correlation_id": "r"}

    monkeypatch.setattr(edge_producer, "identify", fake_identify)
    assert edge_producer.main([*args, str(photo)]) == 0
    return seen


def test_gallery_option_reaches_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FACESTREAM_GALLERY", raising=False)
    assert run_main(monkeypatch, tmp_path)["gallery"] == "default"
    seen = run_main(monkeypatch, tmp_path, "--gallery", "site-b_2")
    assert seen["gallery"] == "site-b_2" and seen["image"] == JPEG
    monkeypatch.setenv("FACESTREAM_GALLERY", "staff")
    assert run_main(monkeypatch, tmp_path)["gallery"] == "staff"
    assert run_main(monkeypatch, tmp_path, "--gallery", "watchlist")["gallery"] == "watchlist"


@pytest.mark.parametrize("bad", ["Watchlist", "-lead", "_lead", "a.b", "a/b", "", "x" * 64])
def test_a_bad_gallery_id_is_refused_before_anything_is_sent(
    bad: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FACESTREAM_GALLERY", raising=False)
    with pytest.raises(SystemExit) as exited:
        run_main(monkeypatch, tmp_path, f"--gallery={bad}")
    assert exited.value.code == 2 and "not a gallery id" in capsys.readouterr().err
