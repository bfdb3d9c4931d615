"""Builds the small C libraries of indexer/native (the tree walk's folder lister, the batch file
reader) into a wheel, so that `pip install .` runs them as `make` does. Without a C compiler, or
if one fails, the wheel is built without it and that part runs in Python (indexer/listing.py,
indexer/pipeline/batch_read.py): slower, the same results."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LIBRARIES = {
    Path("indexer/native/list_folder.c"): Path("indexer/native/_list_folder.so"),
    Path("indexer/native/read_files.c"): Path("indexer/native/_read_files.so"),
}


class NativeListerHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        compiler = shutil.which(os.environ.get("CC", "cc"))
        if compiler is None:
            self.app.display_warning("no C compiler: the tree is walked and read in Python")
            return
        for source, library in LIBRARIES.items():
            command = [compiler, "-O2", "-shared", "-fPIC", "-pthread", "-o", str(root / library)]
            built = subprocess.run(
                [*command, str(root / source)], capture_output=True, text=True, check=False
            )
            if built.returncode != 0:
                self.app.display_warning(
                    f"{source} did not build, that part runs in Python: {built.stderr.strip()}"
                )
                continue
            if version != "editable":  # an editable install loads it from the source tree
                build_data["force_include"][str(root / library)] = str(library)
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
