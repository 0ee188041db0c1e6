"""``audioclf cache``: list and remove audio classification models in the Hugging Face cache (no network)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_FAILED = 1
EXIT_USAGE = 2

cache_app = typer.Typer(
    name="cache",
    help="List or remove models in the Hugging Face cache (HF_HUB_CACHE). Works offline.\n\n"
    "Exit status: 0 success, 1 nothing to remove, 2 usage error.",
    no_args_is_help=True,
    add_completion=False,
)

CacheDirOption = Annotated[
    Optional[Path],
    typer.Option("--cache-dir", help="Hub cache folder (default: HF_HUB_CACHE, or HF_HOME/hub).", show_default=False),
]


def _error(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _size(num: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(num) < 1000 or unit == "TB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1000
    return f"{num:.1f} TB"


def _age(timestamp: float) -> str:
    seconds = max(time.time() - timestamp, 0)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{int(seconds // span)} {unit} ago"
    return "just now"


@cache_app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one object per model.")] = False,
    all_models: Annotated[
        bool, typer.Option("--all", help="Include cached models that are not audio classifiers.")
    ] = False,
    cache_dir: CacheDirOption = None,
) -> None:
    """List cached audio classification models with their revisions and sizes.

    A table on a terminal; JSON Lines when stdout is piped or with --json.
    """
    from audioclf.checkpoints import hub
    from audioclf.errors import HubError

    try:
        models = hub.list_cached_models(cache_dir, audio_only=not all_models)
    except HubError as error:
        raise _error(str(error), EXIT_FAILED) from None
    if as_json or not sys.stdout.isatty():
        for model in models:
            sys.stdout.write(json.dumps(model.to_dict()) + "\n")
        sys.stdout.flush()
        return
    where = cache_dir if cache_dir is not None else hub.default_cache_dir()
    if not models:
        kind = "models" if all_models else "audio classification models"
        typer.echo(f"no {kind} in the cache at {where}", err=True)
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Hub cache: {where}", title_justify="left")
    table.add_column("model")
    table.add_column("type")
    table.add_column("size", justify="right")
    table.add_column("revisions")
    table.add_column("last used", justify="right")
    for model in models:
        revisions = ", ".join(
            f"{rev.commit[:8]}" + (f" ({', '.join(rev.refs)})" if rev.refs else "") for rev in model.revisions
        )
        kind = model.model_type or (model.architectures[0] if model.architectures else "?")
        table.add_row(model.repo_id, kind, _size(model.size_on_disk), revisions, _age(model.last_accessed))
    Console().print(table)


@cache_app.command("rm")
def remove(
    model_id: Annotated[str, typer.Argument(help="Hub model id to remove from the cache.", show_default=False)],
    revision: Annotated[
        Optional[str],
        typer.Option("--revision", "-r", help="Only this revision (branch, tag or commit); default: all.",
                     show_default=False),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    cache_dir: CacheDirOption = None,
) -> None:
    """Remove a cached model, or one of its revisions. Files shared with other revisions are kept."""
    from audioclf.checkpoints import hub
    from audioclf.errors import HubError

    status = hub.cache_status(model_id, cache_dir)
    if not status.cached:
        raise _error(f"model '{model_id}' is not in the cache at {status.cache_dir}", EXIT_FAILED)
    if revision is not None and status.revision(revision) is None:
        cached = ", ".join(rev.commit[:12] + (f" ({', '.join(rev.refs)})" if rev.refs else "") for rev in status.revisions)
        raise _error(f"revision '{revision}' of '{model_id}' is not in the cache (cached: {cached})", EXIT_FAILED)
    what = f"'{model_id}'" + (f" revision '{revision}'" if revision else f" ({len(status.revisions)} revisions)")
    if not yes:
        if not sys.stdin.isatty():
            raise _error(f"pass --yes to remove {what} without a confirmation prompt", EXIT_USAGE)
        if not typer.confirm(f"remove {what} from {status.cache_dir}?", err=True):
            typer.echo("nothing removed", err=True)
            raise typer.Exit(EXIT_FAILED)
    try:
        removed = hub.remove_cached_model(model_id, revision, cache_dir)
    except HubError as error:
        raise _error(str(error), EXIT_FAILED) from None
    typer.echo(f"removed {what}: {_size(removed.freed)} freed", err=True)
