"""``audioclf cache``: list and remove audio classification models in the Hugging Face cache (no network)."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Literal, Optional

import typer

from audioclf.cli._errors import EXIT_SOME_FAILED, EXIT_STATUS_HELP, UsageError, handles_errors
from audioclf.cli._options import CacheDir, Format, Yes, examples
from audioclf.cli._output import Column, choose_format, print_machine, print_table

LIST_EXAMPLES = examples(
    ("audioclf cache list", "a table on a terminal"),
    ("audioclf cache list -f json | jq '.[].repo_id'", "JSON for scripts (JSON Lines when piped)"),
    ("audioclf cache list --all", "every cached model, not only audio classifiers"),
)
RM_EXAMPLES = examples(
    ("audioclf cache rm superb/wav2vec2-base-superb-ks", "asks before removing"),
    ("audioclf cache rm superb/wav2vec2-base-superb-ks --revision v1 -y", "one revision, no question"),
)

cache_app = typer.Typer(
    name="cache",
    help=f"List or remove models in the Hugging Face cache (HF_HUB_CACHE). Works offline.\n\n{EXIT_STATUS_HELP}",
    epilog=examples(("audioclf cache list", "what is cached"), ("audioclf cache rm MODEL_ID", "free the space")),
    no_args_is_help=True,
    add_completion=False,
)

ListFormat = Literal["auto", "table", "json", "jsonl"]


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


@cache_app.command("list", epilog=LIST_EXAMPLES)
@handles_errors()
def list_models(
    output_format: Format[ListFormat] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format jsonl.", hidden=True)] = False,
    all_models: Annotated[
        bool, typer.Option("--all", help="Include cached models that are not audio classifiers.")
    ] = False,
    cache_dir: CacheDir = None,
) -> None:
    """List cached audio classification models with their revisions and sizes.

    A table on a terminal; JSON Lines when stdout is piped.
    """
    from audioclf.checkpoints import hub

    fmt = choose_format(output_format, as_json, machine="jsonl", allowed=("table", "json", "jsonl"))
    models = hub.list_cached_models(cache_dir, audio_only=not all_models)
    if fmt != "table":
        print_machine([model.to_dict() for model in models], fmt)
        return
    where = cache_dir if cache_dir is not None else hub.default_cache_dir()
    if not models:
        kind = "models" if all_models else "audio classification models"
        typer.echo(f"no {kind} in the cache at {where}", err=True)
        return
    columns = [Column("model"), Column("type"), Column("size", "right"), Column("revisions"),
               Column("last used", "right")]
    rows = [
        (model.repo_id, model.model_type or (model.architectures[0] if model.architectures else "?"),
         _size(model.size_on_disk), ", ".join(rev.label for rev in model.revisions), _age(model.last_accessed))
        for model in models
    ]
    print_table(columns, rows, title=f"Hub cache: {where}")


@cache_app.command("rm", epilog=RM_EXAMPLES)
@handles_errors()
def remove(
    model_id: Annotated[str, typer.Argument(help="Hub model id to remove from the cache.", metavar="MODEL_ID",
                                            show_default=False)],
    revision: Annotated[
        Optional[str],
        typer.Option("--revision", help="Only this revision (branch, tag or commit); default: all.",
                     show_default=False),
    ] = None,
    yes: Yes = False,
    cache_dir: CacheDir = None,
) -> None:
    """Remove a cached model, or one of its revisions. Files shared with other revisions are kept.

    Declining the confirmation removes nothing and exits 1.
    """
    from audioclf.checkpoints import hub

    removal = hub.plan_removal(model_id, revision, cache_dir)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"pass --yes to remove {removal.description} without a confirmation prompt")
        if not typer.confirm(f"remove {removal.description} from {removal.status.cache_dir}?", err=True):
            typer.echo("nothing removed", err=True)
            raise typer.Exit(EXIT_SOME_FAILED)
    removed = removal.execute()
    typer.echo(f"removed {removal.description}: {_size(removed.freed)} freed", err=True)
