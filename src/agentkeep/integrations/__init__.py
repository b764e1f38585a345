"""Drop-in adapters for agent frameworks, each behind its own extra.

- ``agentkeep.integrations.openai_agents``: ``AgentkeepSession`` (``agentkeep[openai-agents]``)
- ``agentkeep.integrations.langchain``: ``AgentkeepChatMessageHistory`` (``agentkeep[langchain]``)
- ``agentkeep.integrations.langgraph``: ``AgentkeepSaver`` (``agentkeep[langgraph]``)

Importing this package imports no framework; each module imports its own.
"""
