"""The docs describe what exists: every column in schema.md, every public name exported."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import agentkeep
from agentkeep.concerns import CONCERNS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_column_is_in_schema_md():
    text = (DOCS / "schema.md").read_text()
    for concern in CONCERNS:
        metadata = importlib.import_module(f"agentkeep.{concern}.tables").metadata
        for table in metadata.tables.values():
            section = re.search(rf"^### {table.name}\n(.*?)(?=^##|\Z)", text, re.S | re.M)
            assert section, f"docs/schema.md has no section for {table.name}"
            for column in table.columns:
                assert f"| {column.name} |" in section.group(1), f"{table.name}.{column.name}"


def test_public_surface_is_sorted_and_importable():
    assert agentkeep.__all__ == sorted(agentkeep.__all__)
    for name in agentkeep.__all__:
        assert getattr(agentkeep, name) is not None


def test_every_error_derives_from_the_root():
    for name in agentkeep.__all__:
        value = getattr(agentkeep, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, agentkeep.AgentkeepError), name


def _python_blocks() -> list[str]:
    readme = (DOCS.parent / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, re.S)


def test_readme_library_example_runs(tmp_path):
    sync_example = _python_blocks()[0].replace('"./data"', repr(str(tmp_path / "data")))
    exec(compile(sync_example, "README.md", "exec"), {})
    with agentkeep.open(tmp_path / "data") as store:
        session = store.chat.list_sessions().items[0]
        assert session.message_count == 6
        assert [hit.message.content for hit in store.chat.search("lisbon -train")] == [
            "Flights to Lisbon?"]


def test_readme_async_example_runs(tmp_path):
    import asyncio
    import textwrap

    body = _python_blocks()[1].replace('"postgresql://user@host/db"',
                                       repr(str(tmp_path / "async")))
    namespace: dict = {"agentkeep": agentkeep, "asyncio": asyncio}
    exec("async def example():\n" + textwrap.indent(body, "    "), namespace)
    asyncio.run(namespace["example"]())
    with agentkeep.open(tmp_path / "async") as store:
        assert store.chat.list_sessions().items[0].message_count == 3
