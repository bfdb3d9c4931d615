"""Builds the tree walk's folder lister (indexer/native/list_folder.c) into a wheel, so that
`pip install .` walks in C as `make` does. Without a C compiler, or if it fails, the wheel is
built without it and the walk runs in Python (indexer/listing.py): slower, the same rows."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("indexer/native/list_folder.c")
LIBRARY = Path("indexer/native/_list_folder.so")


class NativeListerHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        compiler = shutil.which(os.environ.get("CC", "cc"))
        if compiler is None:
            self.app.display_warning("no C compiler: the tree is walked in Python")
            return
        command = [compiler, "-O2", "-shared", "-fPIC", "-o", str(root / LIBRARY)]
        built = subprocess.run(
            [*command, str(root / SOURCE)], capture_output=True, text=True, check=False
        )
        if built.returncode != 0:
            self.app.display_warning(
                f"the C lister did not build, the tree is walked in Python: {built.stderr.strip()}"
            )
            return
        if version != "editable":  # an editable install loads it from the source tree
            build_data["force_include"][str(root / LIBRARY)] = str(LIBRARY)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
