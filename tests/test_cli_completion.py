"""Shell completion: bash runs the script ``--show-completion`` prints; zsh and fish are asked through the completion
environment their scripts set (``_AUDIOCLF_COMPLETE``, ``_TYPER_COMPLETE_ARGS``), as the shells do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audioclf.cli import app

AUDIOCLF = str(Path(sys.executable).parent / "audioclf")


def _complete(shell: str, line: str) -> list[str]:
    """What the completion of ``line`` (the words typed so far, the last one incomplete) offers in ``shell``: the
    app run with the environment the shell's script sets (in this process: the same code path, no start-up)."""
    env = {"_AUDIOCLF_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    result = CliRunner().invoke(app, [], env=env, prog_name="audioclf")
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_bash_completes_subcommands_options_and_choices() -> None:
    """A real bash: the script from ``--show-completion``, its function run the way ``complete -F`` runs it."""
    if shutil.which("bash") is None:
        pytest.fail("bash is needed for this test: apt-get install bash")
    cases = {"audioclf cl": ["classify"], "audioclf cache r": ["rm"], "audioclf classify --recu": ["--recursive"],
             "audioclf classify --dtype b": ["bfloat16"]}
    script = 'eval "$("$AUDIOCLF" --show-completion)"\n'
    for typed in cases:
        words = " ".join(f"'{word}'" for word in typed.split())
        script += (f'COMP_WORDS=({words}); COMP_CWORD={len(typed.split()) - 1}; _audioclf_completion "$AUDIOCLF"; '
                   f'echo "${{COMPREPLY[*]}}"\n')
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env={**os.environ, "AUDIOCLF": AUDIOCLF},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()] == list(cases.values())


def test_bash_script_is_what_install_completion_installs(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    script = subprocess.run(["bash", "--norc", "-c", '"$0" --show-completion', AUDIOCLF], env=env,
                            capture_output=True, text=True, timeout=60).stdout
    assert "_AUDIOCLF_COMPLETE=complete_bash" in script and "complete -o default -F _audioclf_completion audioclf" in script
    installed = subprocess.run(["bash", "--norc", "-c", '"$0" --install-completion', AUDIOCLF], env=env,
                               capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    assert "source" in (tmp_path / ".bashrc").read_text()
    assert (tmp_path / ".bash_completions" / "audioclf.sh").read_text().strip() == script.strip()


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_complete_through_the_completion_environment(shell: str) -> None:
    def values(line: str) -> set[str]:
        lines = _complete(shell, line)
        if shell == "fish":  # "value<TAB>help" per line
            return {entry.split("\t")[0] for entry in lines}
        # zsh: _arguments '*: :(("value":"help"\n"value"...))'
        return set(re.findall(r'(?:\(\(|^)"([^"]*)"', "\n".join(lines), flags=re.MULTILINE))

    assert "classify" in values("audioclf cl")
    assert {"--format", "-f"} & values("audioclf inspect --f")
    assert values("audioclf cache list --format ") == {"auto", "table", "json", "jsonl"}
    assert values("audioclf classify --format ") == {"auto", "table", "jsonl", "json", "csv", "tsv", "audacity",
                                                         "raven", "parquet"}
    assert values("audioclf ") >= {"classify", "download", "inspect", "convert", "env", "cache"}
    assert {"auto", "cpu", "cuda", "mps"} <= values("audioclf classify --device ")
    assert values("audioclf classify --channels ") >= {"mix", "first", "each"}
