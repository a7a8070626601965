"""The library's layout: its folders are the pipeline's stages, and imports run one way, from a
stage to the stages below it (README, "How the code is laid out")."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline_lib

ROOT = Path(pipeline_lib.__file__).parent
# bottom to top: a module may import its own folder and the ones before it, never one after
LAYERS = [
    "errors",
    "schema",
    "store",
    "paths",
    "config",
    "validation",
    "db",
    "ingest",
    "features",
    "evaluation",
    "monitoring",
    "forecasting",
    "publishing",
    "running",
    "api",
]
SHARED = {"__init__.py", "errors.py", "schema.py", "paths.py"}  # modules at the top
# The settings check some values with the stage that owns them (an exchange calendar, a
# holiday country, an Open-Meteo option, a database driver, the feature set the settings
# declare): imported inside those checks, so reading settings loads no stage.
LAZY_UPWARD = {"config"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported pipeline_lib module, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pipeline_lib":
                names = [f"pipeline_lib.{a.name}" for a in node.names]
            elif node.module.startswith("pipeline_lib."):
                names = [node.module]
            else:
                continue
            found += [(n, id(node) in top) for n in names]
        elif isinstance(node, ast.Import):
            found += [
                (a.name, id(node) in top) for a in node.names if a.name.startswith("pipeline_lib.")
            ]
    return found


def _layer(module: str) -> str:
    return module.split(".")[1].removesuffix(".py")


def test_the_top_holds_the_stage_folders_and_the_shared_modules_only() -> None:
    entries = {
        p.name
        for p in ROOT.iterdir()
        if not p.name.startswith(("_", ".")) or p.name == "__init__.py"
    }
    folders = {p for p in entries if (ROOT / p).is_dir()} - {"sample_data"}
    assert folders == set(LAYERS) - {p.removesuffix(".py") for p in SHARED}
    assert entries - folders - {"sample_data"} == SHARED


def test_imports_run_down_the_stages() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        inside = path.relative_to(ROOT)
        if (
            inside.parts[0] in ("sample_data",)
            or inside.name == "__init__.py"
            and len(inside.parts) == 1
        ):
            continue
        own = inside.parts[0].removesuffix(".py")
        for module, at_top in _imports(path):
            other = _layer(module)
            if other == own or rank[other] < rank[own]:
                continue
            if own in LAZY_UPWARD and not at_top:
                continue
            upward.append(f"{inside} imports {module} ({own} is below {other})")
    assert not upward, "\n".join(upward)
