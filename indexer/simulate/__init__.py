"""Writes realistic OpenCode activity under a storage root, for the demo, tests and benchmarks:
JSON files as OpenCode ≤ 1.1 wrote them, or (SqliteSimulator) an OpenCode SQLite store beside the
root, of one generation: 1.2, 1.18, 2.x or upgraded (store_schemas.GENERATIONS). Never imports
the indexing pipeline or touches the index database; it only writes what OpenCode writes.

The story (story.py, tools.py) says what OpenCode does; a writer (json_writer.py,
sqlite_writer.py + v118.py for 1.x, v2_writer.py + v2_lifecycle.py + v2_store.py for 2.x,
migration.py for the upgrade) lands it; faults.py bends JSON writes; simulator.py composes them.
"""

from __future__ import annotations

from indexer.simulate.demo import DemoWriter
from indexer.simulate.faults import FAULT_KINDS, FaultInjector
from indexer.simulate.json_writer import JsonWriter
from indexer.simulate.opencode_db import OPENCODE_SQLITE_SCHEMA, create_opencode_db
from indexer.simulate.report import Fault, SimulationReport, Tally
from indexer.simulate.simulator import OpenCodeSimulator, Simulator, SqliteSimulator, Writer
from indexer.simulate.sqlite_writer import SqliteWriter
from indexer.simulate.story import SessionStory, Settled, Write

__all__ = [
    "FAULT_KINDS",
    "OPENCODE_SQLITE_SCHEMA",
    "DemoWriter",
    "Fault",
    "FaultInjector",
    "JsonWriter",
    "OpenCodeSimulator",
    "SessionStory",
    "Settled",
    "SimulationReport",
    "Simulator",
    "SqliteSimulator",
    "SqliteWriter",
    "Tally",
    "Write",
    "Writer",
    "create_opencode_db",
]
