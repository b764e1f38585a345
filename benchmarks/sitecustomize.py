"""Register agentkeep in the peer harness's adapter registry, in every process it starts.

``run_bench.py --adapter`` registers a system only in the parent process, but the
harness runs W6 and W7 in child processes that look systems up again. With
``PYTHONPATH=<project>/benchmarks`` Python imports this module at start-up in the parent
and in every child; it adds ``agentkeep`` (and the framework adapters of
``framework_adapters.py``) to ``adapters.SYSTEMS`` when the harness
imports its ``adapters`` package. Nothing else imports this module.
"""

import importlib.util
import sys


class _RegisterAgentkeep:
    def find_spec(self, name, path=None, target=None):
        if name != "adapters":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.SYSTEMS.setdefault("agentkeep", ("peer_adapter", "AgentkeepAdapter", {}))
            module.SYSTEMS.setdefault("agentkeep-openai-agents", (
                "framework_adapters", "AgentkeepSessionAdapter", {}))
            module.SYSTEMS.setdefault("agentkeep-langchain", (
                "framework_adapters", "AgentkeepHistoryAdapter", {}))

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _RegisterAgentkeep())
