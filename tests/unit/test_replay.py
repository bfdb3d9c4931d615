"""The replay writer copies pre-generated files byte for byte, in place, at its pace."""

from __future__ import annotations

from pathlib import Path

from indexer.scan import walk_files
from indexer.simulate import OpenCodeSimulator
from indexer.simulate.replay import load, replay


def test_a_replay_writes_every_loaded_file_byte_for_byte_under_the_target(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    OpenCodeSimulator(source, seed=5).write_sessions(2)
    files = load(source)
    assert len(files) > 20
    written, seconds = replay(files, target)
    assert written == len(files) and seconds > 0
    copied = {rel: (target / rel).read_bytes() for rel, _, _ in walk_files(target)}
    assert copied == dict(files)


def test_a_paced_replay_takes_at_least_its_files_over_its_rate(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    OpenCodeSimulator(source, seed=6).write_sessions(1)
    files = load(source, limit=20)
    assert len(files) == 20
    written, seconds = replay(files, target, rate=400.0)
    assert written == 20 and seconds >= 19 / 400
