"""The root of the CLI: global options, where the store is, and the one error handler.

Every command reaches the store through :class:`State` (``get_state(ctx)``), so the
rules about the target live here once: ``--home`` or ``--url`` (never both), else the
library's default (``$AGENTKEEP_URL``, ``$AGENTKEEP_HOME`` or the platform data dir).
Commands that only read refuse to create a store where none exists, so a mistyped
``--home`` does not leave an empty store behind.

Errors are handled in :class:`AgentkeepGroup`: ``invoke`` turns whatever a command
raises into a :class:`CommandFailed` (with the traceback first under ``--debug``), and
``main`` prints every failure, usage errors included, as one ``error: ...`` line. The
library names its arguments as Python spells them (``older_than``, ``force=True``); the
handler says them as the command's options, and an ``InvalidInput`` about an argument a
command's parameter of the same name passes is a usage error of that option.

Every Typer app of the CLI is an :class:`AgentkeepTyper`, so every command and group
shares one help style (:class:`HelpStyle`) whatever Typer's version does by default.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from ..concerns import CONCERNS
from ..config import StoreConfig, is_postgres_url, resolve
from ..errors import InvalidInput, NotFound, StoreBusy, StoreUnavailable
from .errors import FAILURE, USAGE, classify, print_traceback, report

try:  # typer >= 0.20 vendors its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

SCHEMA_PREFIX_ENV = "AGENTKEEP_SCHEMA_PREFIX"
BUSY_TIMEOUT_ENV = "AGENTKEEP_BUSY_TIMEOUT"


class CommandFailed(ClickException):
    """A command's exception, already turned into a message and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def paragraphs(text: str | None) -> str | None:
    """Help text with each paragraph on one line, so help wraps it to the terminal rather
    than keeping a docstring's line breaks."""
    if text is None:
        return None
    return "\n\n".join(" ".join(paragraph.split())
                       for paragraph in re.split(r"\n\s*\n", inspect.cleandoc(text)))


class HelpStyle:
    """The help of every command and group: docstring paragraphs wrapped as paragraphs, and
    no value shown for a flag (Typer would write ``--debug <bool>``)."""

    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = paragraphs(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # a flag takes no value
        return params


def param_for(ctx: Any, field: str) -> tuple[Any, Any]:
    """The context and parameter, of ``ctx``'s command or of a group above it (a global
    option), that passes the library argument ``field`` (``thread_ids[2]`` is passed by
    ``thread_ids``); ``(ctx, None)`` when none does."""
    name = re.match(r"\w*", field).group()  # type: ignore[union-attr]
    context = ctx
    while context is not None:
        for param in context.command.get_params(context):
            if param.name == name:
                return context, param
        context = context.parent
    return ctx, None


def param_hint(param: Any) -> str:
    """How a parameter is named in a message: its long option, or an argument's metavar."""
    if param.param_type_name == "option":
        return max(param.opts, key=len)
    return param.metavar or param.name.upper()


def in_cli_words(ctx: Any, text: str, *, bare_names: bool = False) -> str:
    """``text`` from the library with its spelling of the command's arguments made the
    options': ``--force (force=True)`` and ``force=True`` read ``--force``, ``vacuum=False``
    ``--no-vacuum``; with ``bare_names`` (a complaint about arguments), ``older_than``
    reads ``--older-than`` too."""
    for param in ctx.command.get_params(ctx):
        if param.param_type_name != "option" or not param.name:
            continue
        name, option = re.escape(param.name), param_hint(param)
        text = re.sub(rf"{re.escape(option)} \({name}=True\)", option, text)
        text = re.sub(rf"\b{name}=True\b", option, text)
        if param.secondary_opts:
            text = re.sub(rf"\b{name}=False\b", max(param.secondary_opts, key=len), text)
        if bare_names and "_" in param.name:
            text = re.sub(rf"\b{name}\b", option, text)
    return text


#: The ``ctx.meta`` key (shared by all the contexts of a run) of the running command's context.
COMMAND_CONTEXT = "agentkeep.command_context"


class AgentkeepCommand(HelpStyle, TyperCommand):
    """A command of the CLI: its usage line names the arguments as their metavars say."""

    def invoke(self, ctx: Any) -> Any:
        ctx.meta[COMMAND_CONTEXT] = ctx  # so the error handler can name this command's options
        return super().invoke(ctx)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] ID [DEST]``: optional arguments in brackets, nothing else added."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class CommandGroup(HelpStyle, TyperGroup):
    """A group of commands (``sessions``, ``migrate``, ``checkpoints``)."""


class AgentkeepTyper(typer.Typer):
    """A Typer app whose commands are :class:`AgentkeepCommand` and whose group is a
    :class:`CommandGroup` unless told otherwise."""

    def __init__(self, *, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(cls=cls or CommandGroup, **kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or AgentkeepCommand, **kwargs)


class AgentkeepGroup(CommandGroup):
    """The root command group, with the CLI's single error handler."""

    #: The order of ``agentkeep --help`` (Typer would list the groups last).
    order = ("init", "demo", "migrate", "sessions", "search", "stats", "check", "optimize",
             "prune", "backup", "restore", "export", "import", "checkpoints")

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: self.order.index(n) if n in self.order else 99)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        # A closed stdout (`agentkeep ... | head`) is left to Typer, which exits 1 quietly.
        except (ClickException, typer.Exit, typer.Abort, BrokenPipeError):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if ctx.params.get("debug"):
                print_traceback(exc)
            command_ctx = ctx.meta.get(COMMAND_CONTEXT, ctx)
            if isinstance(exc, InvalidInput):
                param_ctx, param = param_for(command_ctx, exc.field)
                if param is not None:
                    problem = in_cli_words(command_ctx, exc.problem, bare_names=True)
                    raise typer.BadParameter(problem, ctx=param_ctx,
                                             param_hint=param_hint(param)) from exc
            code, message = classify(exc)
            if isinstance(exc, StoreBusy):  # the library's option is the global one here
                message = re.sub(r"\bbusy_timeout\b", "--busy-timeout", message)
            raise CommandFailed(in_cli_words(command_ctx, message), code) from exc

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            result = super().main(args=args, prog_name=prog_name or "agentkeep",
                                  complete_var=complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except NoArgsIsHelpError as exc:
            help_text = exc.format_message()
            if help_text.strip():
                sys.stderr.write(help_text.rstrip() + "\n")
            code = USAGE
        except CommandFailed as exc:
            report(exc.format_message())
            code = exc.exit_code
        except UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            report(exc.format_message().rstrip(".") + hint)
            code = USAGE
        except ClickException as exc:
            report(exc.format_message())
            code = exc.exit_code
        except typer.Abort:
            report("aborted")
            code = FAILURE
        if standalone_mode:
            sys.exit(code)
        return code


app = AgentkeepTyper(
    cls=AgentkeepGroup,
    name="agentkeep",
    help="Inspect, migrate and fill an agentkeep store (SQLite directory or PostgreSQL).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _program() -> str:
    """How to run this agentkeep again: the path it was started by (``.venv/bin/agentkeep``,
    as the README runs it) when another or no ``agentkeep`` is on PATH."""
    invoked = sys.argv[0]
    if os.path.basename(invoked) == "agentkeep" and os.sep in invoked:
        found = shutil.which("agentkeep")
        if found is None or os.path.realpath(found) != os.path.realpath(invoked):
            return invoked
    return "agentkeep"


@dataclass
class State:
    """Where the store is, from the global options; shared by every command."""

    home: Path | None = None
    url: str | None = None
    schema_prefix: str | None = None
    busy_timeout: float | None = None
    debug: bool = False

    def config(self) -> StoreConfig:
        """The resolved store configuration (raises InvalidInput for bad options)."""
        options: dict[str, Any] = {}
        if self.schema_prefix is not None:
            options["schema_prefix"] = self.schema_prefix
        if self.busy_timeout is not None:
            options["busy_timeout"] = self.busy_timeout
        return resolve(self.url or self.home, **options)

    def command(self, *words: str) -> str:
        """A command line to run against this same store: ``agentkeep`` (as it was started
        when another or no ``agentkeep`` is on PATH), the global options in use (a URL
        without its password), then ``words``; quoted for a shell."""
        line = [_program()]
        if self.home is not None:
            line += ["--home", str(self.home)]
        if self.url is not None:
            line += ["--url", self.config().describe()]
        if self.schema_prefix is not None:
            line += ["--schema-prefix", self.schema_prefix]
        if self.busy_timeout is not None:
            line += ["--busy-timeout", f"{self.busy_timeout:g}"]
        return shlex.join([*line, *words])

    def describe(self, config: StoreConfig) -> str:
        if config.url:
            return f"{config.describe()} (schemas {config.schema_prefix}_*)"
        return str(config.home)

    def require_store(self, config: StoreConfig) -> None:
        """Raise NotFound unless a store (of any revision) exists at ``config``."""
        if not store_exists(config):
            raise NotFound(f"no agentkeep store at {self.describe(config)}; "
                           "create one with `agentkeep init`")

    def open(self, *, create: bool = False):
        """Open the store (migrating it like :func:`agentkeep.open`); close it when done.

        Args:
            create: create the store when none exists; otherwise raise NotFound.
        """
        import agentkeep

        config = self.config()
        if not create:
            self.require_store(config)
        return agentkeep.Store(config)

    @contextmanager
    def backend(self, *, create: bool = False) -> Iterator[Any]:
        """A bare backend (no migration on open) for the ``migrate`` and ``init`` commands."""
        from ..backend import create_backend

        config = self.config()
        if not create:
            self.require_store(config)
        backend = create_backend(config, CONCERNS)
        try:
            yield backend
        finally:
            backend.close()


# Whether a concern's schema exists: the PostgreSQL twin of "its SQLite file exists".
SCHEMA_EXISTS = "SELECT 1 FROM pg_namespace WHERE nspname = ?"


def store_exists(config: StoreConfig) -> bool:
    """Whether ``config`` names an existing store (a concern's file or schema), without
    creating anything."""
    if config.home is not None:
        home = config.home
        try:  # exists() raises PermissionError when a parent cannot be searched
            if home.exists() and not home.is_dir():
                return True  # opening it fails with the library's clear "is a file" error
            return any((home / f"{concern}.db").exists() for concern in CONCERNS)
        except OSError as exc:
            raise StoreUnavailable(f"cannot read the store directory {home}: "
                                   f"{exc.strerror or exc}") from exc
    from ..backend import create_backend

    backend = create_backend(config, CONCERNS)
    try:
        for concern in CONCERNS:
            with backend.read(concern) as conn:
                if conn.one(SCHEMA_EXISTS, (backend.schema(concern),)) is not None:
                    return True
        return False
    finally:
        backend.close()


def not_empty(value: str | None) -> str | None:
    """A callback refusing an empty string (for file arguments kept as text, where '-' is
    standard input or output)."""
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty")
    return value


def non_empty_path(value: str | Path) -> Path:
    """A path option's parser: ``--home ""`` (an unset shell variable, say) would
    otherwise mean the current directory."""
    return value if isinstance(value, Path) else Path(not_empty(value) or "")


def get_state(ctx: typer.Context) -> State:
    """The :class:`State` built by the root callback (a default one if there is none)."""
    state = ctx.find_root().obj
    return state if isinstance(state, State) else State()


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"agentkeep {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", metavar="DIR", parser=non_empty_path,
        help="Store directory (SQLite). Default: $AGENTKEEP_HOME or the platform's user data "
             "directory.")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", metavar="URL", help="PostgreSQL URL (postgresql://...). Default: "
        "$AGENTKEEP_URL.")] = None,
    schema_prefix: Annotated[str | None, typer.Option(
        "--schema-prefix", metavar="NAME", envvar=SCHEMA_PREFIX_ENV,
        help="PostgreSQL schema prefix (schemas NAME_chat, NAME_app, ...). Default: agentkeep.")
    ] = None,
    busy_timeout: Annotated[float | None, typer.Option(
        "--busy-timeout", metavar="SECONDS", envvar=BUSY_TIMEOUT_ENV, min=0, max=3600,
        help="How long to wait for a store another process is writing (or a PostgreSQL "
             "lock) before giving up. Default: 10.")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback when a command fails.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print the agentkeep version and exit.")] = False,
) -> None:
    """Inspect, migrate and fill an agentkeep store (SQLite directory or PostgreSQL)."""
    if home is not None and url is not None:
        raise typer.BadParameter("use either --home or --url, not both", param_hint="--home")
    if url is not None and not is_postgres_url(url):
        raise typer.BadParameter("must be a postgresql:// URL", param_hint="--url")
    ctx.obj = State(home=home, url=url, schema_prefix=schema_prefix,
                    busy_timeout=busy_timeout, debug=debug)
