"""``python -m agentkeep.cli``: the same as the ``agentkeep`` command."""

from __future__ import annotations

from . import main

main()
