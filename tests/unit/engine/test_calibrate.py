from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.settings import Settings
from engine.calibrate import config_threshold, embed_dataset, load_dataset, write_env_threshold
from engine.fake import DeterministicFakeEngine


def _dataset(root: Path) -> Path:
    for person, images in {
        "ann": [b"FAKE:ann:1", b"FAKE:ann:2"],
        "bob": [b"FAKE:bob:1", b"FAKE-NOFACE"],
    }.items():
        (root / person).mkdir(parents=True)
        for i, data in enumerate(images):
            (root / person / f"{i}.jpg").write_bytes(data)
    (root / ".hidden").mkdir()
    (root / "README.txt").write_text("not a person")
    return root


def test_load_and_embed_a_folder_per_person(tmp_path: Path) -> None:
    samples = load_dataset(_dataset(tmp_path / "ds"))
    assert [(s.identity, s.path.name) for s in samples] == [
        ("ann", "0.jpg"), ("ann", "1.jpg"), ("bob", "0.jpg"), ("bob", "1.jpg"),
    ]  # fmt: skip
    embedded = embed_dataset(DeterministicFakeEngine(), samples, batch=2)
    assert embedded.labels == ["ann", "ann", "bob"]
    assert embedded.embeddings.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(embedded.embeddings, axis=1), 1.0, atol=1e-6)
    assert [f["code"] for f in embedded.failures] == ["no_face"]


def test_empty_or_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")
    with pytest.raises(ValueError):
        load_dataset(tmp_path)


def test_config_threshold_rounds_up() -> None:
    assert config_threshold(0.39197) == 0.392
    assert config_threshold(0.3920) == 0.392
    assert config_threshold(0.99999) == 1.0


def test_write_env_threshold_updates_in_place(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# settings\nFACESTREAM_TOP_K=3\nFACESTREAM_THRESHOLD=0.45\nOTHER=x\n")
    write_env_threshold(env, 0.392)
    assert env.read_text() == "# settings\nFACESTREAM_TOP_K=3\nFACESTREAM_THRESHOLD=0.392\nOTHER=x\n"
    fresh = tmp_path / "new" / ".env"
    write_env_threshold(fresh, 0.5)
    assert fresh.read_text() == "FACESTREAM_THRESHOLD=0.5\n"


def test_env_file_sets_threshold_but_env_var_wins(tmp_path: Path, monkeypatch) -> None:
    env = tmp_path / ".env"
    write_env_threshold(env, 0.392)
    monkeypatch.delenv("FACESTREAM_THRESHOLD", raising=False)
    assert Settings(_env_file=env).threshold == 0.392  # type: ignore[call-arg]
    monkeypatch.setenv("FACESTREAM_THRESHOLD", "0.6")
    assert Settings(_env_file=env).threshold == 0.6  # type: ignore[call-arg]


def test_a_root_holding_people_is_read_like_a_folder_per_person(tmp_path: Path) -> None:
    for person in ("ann", "bob"):
        (tmp_path / "people" / person).mkdir(parents=True)
        (tmp_path / "people" / person / "1.jpg").write_bytes(b"x")
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "group.jpg").write_bytes(b"x")
    samples = load_dataset(tmp_path)
    assert [(s.path.parent.name, s.identity) for s in samples] == [("ann", "ann"), ("bob", "bob")]


def test_a_manifest_wins_and_missing_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "manifest.csv").write_text("path,identity\na.jpg,ann\n")
    assert [(s.path.name, s.identity) for s in load_dataset(tmp_path)] == [("a.jpg", "ann")]
    (tmp_path / "manifest.csv").write_text("path,identity\na.jpg,ann\ngone.jpg,bob\n")
    with pytest.raises(FileNotFoundError, match=r"gone\.jpg"):
        load_dataset(tmp_path)
