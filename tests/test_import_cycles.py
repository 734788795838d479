"""No import cycles inside a stage, counting imports placed inside functions (which hide a
cycle from Python but not from a reader). Imports made only for type checking are left out:
they never run."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")

STAGES = (
    "cgan.common", "cgan.scraping", "cgan.training", "cgan.evaluation", "cgan.export",
    "cgan.inference", "cgan.dashboard",
)  # fmt: skip


def _stage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_stage_has_an_import_cycle():
    graph = grimp.build_graph(*STAGES, exclude_type_checking_imports=True)
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if _stage(imported) == _stage(module) and graph.chain_exists(
                importer=imported, imported=module
            ):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                cycles.add(" -> ".join((module, *chain)))
    assert not cycles, "\n".join(sorted(cycles))
