"""A session's message tree, gathered through the public chat API and drawn with rich.

The chat API reads one branch at a time (``history`` follows the head), so the tree is
put together from the active branch plus, for every other leaf from ``branches``, the
walk up through ``get_message`` until it meets a message already known. Side branches
are short in practice, so this costs a few queries per branch.

A linear run of messages is drawn as one flat list; the tree only nests where a
message has several children (an edit or a regenerated answer), one node per branch,
and where the session has several roots (an edit of its first message).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .output import ROLE_STYLES, human_size, jsonable, money, number, one_line, when

PREVIEW_WIDTH = 100


@dataclass
class SessionView:
    """What ``sessions show`` displays: the session and the part of its tree in view."""

    session: Any
    branches: list[Any]
    #: Every message gathered, by id.
    messages: dict[str, Any]
    #: Ids on the active branch (root to head).
    active: set[str]
    #: Where the drawing starts: the roots, or the first message of the ``--last`` window.
    starts: list[Any]
    #: Messages of the active branch before the window.
    earlier: int = 0
    tool_calls: dict[str, list[Any]] = field(default_factory=dict)
    attachments: dict[str, list[Any]] = field(default_factory=dict)
    files: list[Any] = field(default_factory=list)

    def children(self) -> dict[str | None, list[Any]]:
        kids: dict[str | None, list[Any]] = defaultdict(list)
        for message in sorted(self.messages.values(), key=lambda m: m.seq):
            kids[message.parent_id].append(message)
        return kids

    def shown(self) -> list[Any]:
        """The messages in view (the starts and everything below them), in seq order."""
        kids, seen, stack = self.children(), [], list(self.starts)
        while stack:
            message = stack.pop()
            seen.append(message)
            stack.extend(kids.get(message.id, ()))
        return sorted(seen, key=lambda m: m.seq)


def load_view(store: Any, session_id: str, last: int | None = None) -> SessionView:
    """Gather a session's tree (read-only). ``last`` keeps the last N active messages."""
    chat = store.chat
    session = chat.get_session(session_id)
    active = chat.history(session_id)
    known = {message.id: message for message in active}
    branches = chat.branches(session_id)
    for branch in branches:
        node = branch.leaf
        while node.id not in known:
            known[node.id] = node
            if node.parent_id is None or node.parent_id in known:
                break
            node = chat.get_message(node.parent_id)
    window = active[-last:] if last else active
    if last and window:
        starts = [window[0]]
    else:
        starts = sorted((m for m in known.values() if m.parent_id is None), key=lambda m: m.seq)
    view = SessionView(session, branches, known, {m.id for m in active}, starts,
                       earlier=len(active) - len(window))
    for call in chat.tool_calls(session_id, limit=100_000):
        view.tool_calls.setdefault(call.message_id, []).append(call)
    for message in view.shown():
        attachments = chat.attachments(message.id)
        if attachments:
            view.attachments[message.id] = attachments
    view.files = chat.files(session_id)
    return view


def view_json(view: SessionView) -> dict[str, Any]:
    """The JSON document of ``sessions show --json``."""
    messages = []
    for message in view.shown():
        item = jsonable(message)
        item["on_active_branch"] = message.id in view.active
        item["tool_calls"] = jsonable(view.tool_calls.get(message.id, []))
        item["attachments"] = jsonable(view.attachments.get(message.id, []))
        messages.append(item)
    return {
        "session": jsonable(view.session),
        "branches": [{"leaf_id": b.leaf.id, "leaf_seq": b.leaf.seq, "length": b.length,
                      "is_active": b.is_active} for b in view.branches],
        "earlier_messages": view.earlier,
        "messages": messages,
        "files": jsonable(view.files),
    }


def session_header(view: SessionView) -> Table:
    """Key facts and counters of the session, as a two-column grid."""
    session = view.session
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    title = Text(one_line(session.title, 200) or "(untitled)", style="bold")
    if session.status != "active":
        title.append(f"  [{session.status}]", style="yellow")
    grid.add_row("session", title)
    grid.add_row("id", session.id)
    model = "/".join(filter(None, [session.provider, session.model])) or "-"
    grid.add_row("model", Text(one_line(model)))
    if session.parent_id:
        grid.add_row("parent", session.parent_id)
    if session.forked_from_id:
        grid.add_row("forked from", session.forked_from_id)
    grid.add_row("created", when(session.created_at))
    grid.add_row("last active", when(session.active_at))
    grid.add_row("messages", f"{number(session.message_count)} in {len(view.branches)} "
                             f"branch{'es' if len(view.branches) != 1 else ''}")
    grid.add_row("tokens", f"{number(session.input_tokens)} in, "
                           f"{number(session.output_tokens)} out")
    grid.add_row("cost", money(session.cost))
    if view.files:
        grid.add_row("files", Text(", ".join(f"{one_line(f.path, 60)} v{f.version} "
                                             f"({human_size(f.size)})" for f in view.files)))
    return grid


def _tool_suffix(view: SessionView, message: Any) -> Text:
    text = Text()
    calls = {call.call_id: call for call in view.tool_calls.get(message.id, [])}
    for part in message.parts:
        if part.get("type") != "tool_call":
            continue
        call = calls.get(part.get("id"))
        arguments = ", ".join(f"{k}={v!r}" for k, v in (part.get("arguments") or {}).items()) \
            if isinstance(part.get("arguments"), dict) else ""
        text.append("  → ", style="dim")
        text.append(one_line(f"{part.get('name')}({arguments})", 60), style="yellow")
        if call is not None:
            mark, style = {"succeeded": ("✓", "green"), "failed": ("✗", "red")}.get(
                call.status, (call.status, "yellow"))
            text.append(f" {mark}", style=style)
            if call.duration_ms is not None:
                text.append(f" {call.duration_ms / 1000:.1f}s", style="dim")
    return text


def message_label(view: SessionView, message: Any) -> Text:
    """One line for a message: sequence number, role, preview, tool calls, files."""
    on_branch = message.id in view.active
    label = Text(f"#{message.seq:<{len(str(view.session.message_count))}} ", style="dim")
    label.append(f"{message.role:<10}", style=ROLE_STYLES.get(message.role, "bold")
                 if on_branch else "dim")
    is_error = any(part.get("type") == "tool_result" and part.get("is_error")
                   for part in message.parts)
    if is_error:
        label.append("✗ ", style="red")
    label.append(one_line(message.content, PREVIEW_WIDTH) or "(no text)",
                 style=None if on_branch else "dim")
    label.append_text(_tool_suffix(view, message))
    if message.id == view.session.summary_id:
        label.append("  [summary]", style="magenta")
    if message.role == "assistant" and message.model and message.model != view.session.model:
        label.append(f"  ({one_line(message.model, 40)})", style="dim")
    for attachment in view.attachments.get(message.id, []):
        label.append(f"  + {one_line(attachment.filename, 40)} "
                     f"({human_size(attachment.size)})", style="cyan")
    return label


def session_tree(view: SessionView) -> Tree:
    """The message tree: flat runs, one nested node per branch where the tree forks."""
    session = view.session
    tree = Tree(Text(one_line(session.title, 80) or "(untitled)", style="bold"),
                guide_style="dim")
    if view.earlier:
        tree.add(Text(f"… {number(view.earlier)} earlier messages on the active branch",
                      style="dim"))
    shown = {message.id for message in view.shown()}
    hidden = sum(branch.leaf.id not in shown for branch in view.branches)
    if hidden:
        what = "1 more branch forks" if hidden == 1 else f"{hidden} more branches fork"
        tree.add(Text(f"… {what} earlier (show more with a larger --last)", style="dim"))
    kids = view.children()

    def add_messages(node: Tree, messages: list[Any]) -> None:
        """One message continues the flat run; several fork, one captioned node each."""
        while len(messages) == 1:
            node.add(message_label(view, messages[0]))
            messages = kids.get(messages[0].id, [])
        for number_, message in enumerate(messages, 1):
            is_active = message.id in view.active
            caption = Text(f"branch {number_} of {len(messages)}",
                           style="bold green" if is_active else "dim")
            if is_active:
                caption.append(" (active)", style="green")
            add_messages(node.add(caption), [message])

    add_messages(tree, view.starts)
    if not view.starts:
        tree.add(Text("(no messages)", style="dim"))
    return tree


def render_session(view: SessionView) -> Group:
    """Header and tree, ready for ``console.print``."""
    return Group(session_header(view), Text(), session_tree(view))
