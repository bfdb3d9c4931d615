"""The engine behind the dashboard: live switch, rollback, rollout, status and metrics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import orjson

from indexer.service import IndexerService
from indexer.simulate import OpenCodeSimulator
from indexer.store.database import open_database
from tests.helpers import census, wait_until, write


def test_switch_five_times_while_the_simulator_writes_loses_nothing(
    storage_root: Path, db_path: Path
) -> None:
    service = IndexerService(storage_root, db_path, cli_choice="v2", env={})
    service.start()
    stop = threading.Event()
    sim = OpenCodeSimulator(storage_root, seed=8)
    writer = threading.Thread(target=sim.run, args=(400, 60.0, stop))
    writer.start()
    try:
        versions = []
        for target in ("v1", "v2", "v1", "v2", "v1"):
            before = service.snapshot().totals["indexed"]
            # Each indexer does real work before it is switched away.
            assert wait_until(lambda b=before: service.snapshot().totals["indexed"] >= b + 20, 20)
            result = service.switch_to(target, "test")
            assert result.ok, result.message
            versions.append(service.active)
        assert versions == ["v1", "v2", "v1", "v2", "v1"]
    finally:
        stop.set()
        writer.join()
    service.switch_to("v2", "settle")  # v2 reconciles at start: anything in flight is found
    assert service.current is not None
    assert service.current.wait_idle(timeout_s=30, settle_s=2.5)
    service.stop()
    conn = open_database(db_path, read_only=True)
    try:
        assert census(conn, storage_root) == []
        switches = conn.execute("SELECT from_version, to_version FROM switch_log").fetchall()
        assert len(switches) == 6
        versions_seen = {
            r[0] for r in conn.execute("SELECT DISTINCT indexer_version FROM batch_log").fetchall()
        }
        assert versions_seen == {"v1", "v2"}
    finally:
        conn.close()


def test_rollback_puts_v1_in_charge_at_once_and_a_restart_stays_on_v1(
    storage_root: Path, db_path: Path
) -> None:
    env = {"UNIFIED_INDEXER_V2_ROLLOUT": "100"}
    service = IndexerService(storage_root, db_path, env=env)
    service.start()
    assert service.active == "v2"
    result = service.rollback("p95 too high")
    assert result.ok and service.active == "v1"
    assert service.snapshot().rollout_percent == 0
    write(storage_root, "session/global/ses_1.json", orjson.dumps({"id": "ses_1"}))
    assert wait_until(lambda: service.snapshot().totals["indexed"] == 1, 10)  # v1 is working
    service.stop()
    again = IndexerService(storage_root, db_path, env=env)
    again.start()
    try:
        assert again.active == "v1"
        assert again.choice is not None and "persisted" in again.choice.reason
    finally:
        again.stop()


def test_set_rollout_applies_to_the_running_engine(storage_root: Path, db_path: Path) -> None:
    service = IndexerService(storage_root, db_path, env={"UNIFIED_INDEXER_V2_ROLLOUT": "0"})
    service.start()
    try:
        assert service.active == "v1"
        assert service.set_rollout(100).ok and service.active == "v2"
        assert service.set_rollout(0).ok and service.active == "v1"
        assert (
            json.loads((db_path.parent / (db_path.name + ".rollout.json")).read_text())[
                "rollout_percent"
            ]
            == 0
        )
    finally:
        service.stop()


def test_the_dashboard_on_a_fresh_install_runs_v2_and_its_keys_still_move_it(
    storage_root: Path, db_path: Path
) -> None:
    from indexer.service import open_service

    service = open_service(
        storage_root=storage_root, db_path=db_path, indexer=None, demo=False, env={}
    )
    try:
        assert service.active == "v2" and service.snapshot().rollout_percent == 100
        assert service.choice is not None and service.choice.reason.startswith("default rollout")
        assert service.set_rollout(90).ok  # `-`: the install's bucket decides
        assert service.active == service.choice.version
        assert service.switch_to("v1", "v").ok and service.active == "v1"  # `v`
        assert service.set_rollout(100).ok and service.active == "v2"  # `+` up to 100%
        assert service.rollback("b").ok and service.active == "v1"  # `b`
    finally:
        service.stop()
    again = open_service(
        storage_root=storage_root, db_path=db_path, indexer=None, demo=False, env={}
    )
    try:
        assert again.active == "v1"  # the rollback outlives the dashboard
    finally:
        again.stop()


def test_run_on_a_fresh_install_runs_v2(storage_root: Path, db_path: Path) -> None:
    OpenCodeSimulator(storage_root, seed=3).write_sessions(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIFIED_INDEXER_V2_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "indexer",
            "run",
            "--storage",
            str(storage_root),
            "--db",
            str(db_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        lines.extend(proc.stderr)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: any("running v2 on" in line for line in lines), 30), lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    reader.join(timeout=10)
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.returncode == 0 and " on v2: " in out, (out, lines)
    assert any("default rollout 100%" in line for line in lines), lines


def test_rollback_command_works_on_a_stopped_database(storage_root: Path, db_path: Path) -> None:
    OpenCodeSimulator(storage_root, seed=2).write_sessions(2)
    run = [sys.executable, "-m", "indexer"]
    subprocess.run(
        [*run, "index", "--storage", str(storage_root), "--db", str(db_path), "--indexer", "v2"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    env_v2 = {"UNIFIED_INDEXER_V2_ROLLOUT": "100", "PATH": "/usr/bin:/bin"}
    status = subprocess.run(
        [*run, "status", "--db", str(db_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_v2,
    )
    assert json.loads(status.stdout)["active"] == "v2"
    rb = subprocess.run(
        [*run, "rollback", "--db", str(db_path)], capture_output=True, text=True, timeout=60
    )
    assert rb.returncode == 0 and "rolled back" in rb.stdout
    status = subprocess.run(
        [*run, "status", "--db", str(db_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_v2,
    )
    doc = json.loads(status.stdout)
    assert (doc["active"], doc["rollout_percent"]) == ("v1", 0)
    assert doc["versions"]["v2"]["files"] > 0 and doc["versions"]["v1"]["files"] == 0
    assert set(doc) >= {
        "schema_version",
        "file_index",
        "tables",
        "active",
        "rollout_percent",
        "versions",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_port_serves_prometheus_text(storage_root: Path, db_path: Path) -> None:
    OpenCodeSimulator(storage_root, seed=4).write_sessions(2)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "indexer",
            "run",
            "--storage",
            str(storage_root),
            "--db",
            str(db_path),
            "--indexer",
            "v2",
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""

        def scraped() -> bool:
            nonlocal body
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    body = resp.read().decode()
            except OSError:
                return False
            return 'ocindex_files_indexed_total{indexer_version="v2"}' in body

        assert wait_until(scraped, 30), body[-500:]
        for name in (
            "ocindex_file_errors_total",
            "ocindex_pending_files",
            "ocindex_batch_latency_seconds_bucket",
        ):
            assert name in body
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_demo_mode_writes_live_into_a_temporary_root_and_cleans_up() -> None:
    from indexer.service import open_service

    service = open_service(
        storage_root=None, db_path=None, indexer=None, demo=True, env={}, demo_rate_files_per_s=200
    )
    root = service.root
    try:
        assert service.demo and service.active == "v2" and root.is_dir()
        assert wait_until(lambda: service.snapshot().totals["indexed"] > 50, 20)
        snap = service.snapshot()
        assert snap.demo and snap.running and snap.recent_batches
        assert service.flush().ok and service.rescan().ok
    finally:
        service.stop()
    assert not root.exists() and not root.parent.exists()
