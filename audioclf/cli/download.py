"""``audioclf download``: fetch a model from the Hugging Face Hub into the cache and print where it is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from audioclf.cli._errors import UsageError, handles_errors
from audioclf.cli._options import CacheDir, Quiet, Revision, Token, examples


EXAMPLES = examples(
    ("audioclf download superb/wav2vec2-base-superb-ks", "into the Hugging Face cache; prints the folder"),
    ("audioclf download org/private-model --revision v2 --token $HF_TOKEN", "a branch or tag of a private model"),
    ("audioclf download superb/wav2vec2-base-superb-ks --local-dir ./ks", "a plain folder instead of the cache"),
    ("audioclf classify -m \"$(audioclf download -q superb/wav2vec2-base-superb-ks)\" a.wav", "then classify"),
)


@handles_errors()
def download(
    model_id: Annotated[str, typer.Argument(help="Hub model id, e.g. 'superb/wav2vec2-base-superb-ks'.",
                                            metavar="MODEL_ID", show_default=False)],
    revision: Revision = None,
    cache_dir: CacheDir = None,
    local_dir: Annotated[
        Optional[Path],
        typer.Option("--local-dir", help="Copy the files into this folder instead of the cache.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if the files are cached.")] = False,
    token: Token = None,
    from_tf: Annotated[bool, typer.Option("--from-tf", help="Fetch TensorFlow weights (tf_model.h5) instead.")] = False,
    quiet: Quiet = False,
) -> None:
    """Download a model (config, preprocessor config, one weights format) and print its local folder.

    Only the path goes to stdout; progress and notes go to stderr. A cached model needs no network.
    """
    from audioclf.checkpoints import hub

    if not hub.is_valid_repo_id(model_id):
        if Path(model_id).expanduser().exists():
            raise UsageError(f"'{model_id}' is a local path, not a Hub model id: it needs no download")
        raise UsageError(f"'{model_id}' is not a Hub model id: expected 'org/name'")
    if force and hub.is_offline_mode():
        raise UsageError("--force needs network access but HF_HUB_OFFLINE is set")

    import huggingface_hub.utils

    if quiet or not sys.stderr.isatty():
        huggingface_hub.utils.disable_progress_bars()
    fetched = hub.fetch_model(model_id, revision=revision, cache_dir=cache_dir, local_dir=local_dir,
                              force_download=force, token=token, from_tf=from_tf)
    if not quiet:
        where = "from the cache (offline, or the Hub is unreachable)" if fetched.from_cache else "from the Hub"
        commit = fetched.commit or "unknown commit"
        typer.echo(f"{model_id} @ {fetched.revision} -> {commit}: {len(fetched.files)} files {where}", err=True)
    typer.echo(str(fetched.path))
