"""LangGraph's published conformance suite (langgraph-checkpoint-conformance) against
AgentkeepSaver, on both backends: once through the async methods (what the suite calls)
and once through the sync methods (the suite driving a saver whose a* methods call them)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402

from agentkeep.integrations.langgraph import AgentkeepSaver  # noqa: E402


class SyncDrivenSaver(AgentkeepSaver):
    """The suite awaits a* methods; these run the sync ones, so the suite tests those."""

    async def aput(self, *args, **kwargs):
        return self.put(*args, **kwargs)

    async def aput_writes(self, *args, **kwargs):
        return self.put_writes(*args, **kwargs)

    async def aget_tuple(self, *args, **kwargs):
        return self.get_tuple(*args, **kwargs)

    async def alist(self, *args, **kwargs):
        for item in self.list(*args, **kwargs):
            yield item

    async def adelete_thread(self, *args, **kwargs):
        return self.delete_thread(*args, **kwargs)

    async def adelete_for_runs(self, *args, **kwargs):
        return self.delete_for_runs(*args, **kwargs)

    async def acopy_thread(self, *args, **kwargs):
        return self.copy_thread(*args, **kwargs)

    async def aprune(self, *args, **kwargs):
        return self.prune(*args, **kwargs)


def run_suite(name: str, make_saver) -> dict:
    @checkpointer_test(name=name)
    async def factory():
        yield make_saver()  # a fresh saver object per capability suite

    report = asyncio.run(validate(factory))
    return report.to_dict()


def assert_full_conformance(report: dict) -> None:
    results = report["results"]
    assert set(results) == {capability.value for capability in ALL_CAPABILITIES}
    failures = {name: r["failures"] for name, r in results.items() if r["passed"] is not True}
    assert failures == {}
    assert all(r["detected"] and r["tests_passed"] > 0 and r["tests_failed"] == 0
               for r in results.values())
    assert report["conformance_level"] == "FULL"


def test_conformance_async(stores):
    store = stores.open()
    report = run_suite(f"AgentkeepSaver-async-{stores.backend}", lambda: AgentkeepSaver(store))
    assert_full_conformance(report)


def test_conformance_async_on_an_async_store(stores):
    async def open_async():
        return await stores.open_async()

    async_store = asyncio.run(open_async())
    report = run_suite(f"AgentkeepSaver-asyncstore-{stores.backend}",
                       lambda: AgentkeepSaver(async_store))
    assert_full_conformance(report)


def test_conformance_sync(stores):
    store = stores.open()
    report = run_suite(f"AgentkeepSaver-sync-{stores.backend}", lambda: SyncDrivenSaver(store))
    assert_full_conformance(report)
