"""Installing audioclf as a newcomer does: declared dependencies that match the imports, an sdist that carries what
``make test`` and ``make demo`` need, and a wheel that works in a fresh virtual environment outside the repository."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: what a clone does not have (.gitignore) or a build must not see, at any depth
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
                                    "*.pyc")
#: ignored at the top of the repository only (audioclf/data is a package)
NOT_SOURCE_AT_TOP = {"build", "dist", "data", ".bench-cache"}


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def _imports() -> dict[str, dict[str, bool]]:
    """Top-level modules imported by the package: module -> {file: imported when the file is imported}."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted((REPO / "audioclf").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        at_import = {id(node) for node in tree.body} | {
            id(child) for node in tree.body if isinstance(node, (ast.If, ast.Try)) for child in ast.walk(node)}
        type_checking = {id(child) for node in ast.walk(tree) if isinstance(node, ast.If)
                         and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                         for child in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "audioclf" or id(node) in type_checking:
                    continue
                entry = found.setdefault(top, {})
                entry[str(path.relative_to(REPO))] = entry.get(str(path.relative_to(REPO)), False) or id(node) in at_import
    return found


def test_dependencies_are_exactly_what_the_package_imports() -> None:
    distributions = importlib.metadata.packages_distributions()  # import name -> distributions that provide it
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {extra: {_name(r) for r in requirements}
              for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items() if extra != "test"}
    imported: dict[str, dict[str, bool]] = {}
    for module, files in _imports().items():
        providers = {_name(d) for d in distributions.get(module, [])}
        assert providers, f"{module} (imported by {sorted(files)}) is installed by no distribution"
        for provider in providers:
            imported.setdefault(provider, {}).update(files)
    unused = runtime - set(imported)
    assert not unused, f"runtime dependencies no module imports: {sorted(unused)}"
    for distribution, files in imported.items():
        if distribution in runtime:
            continue
        holding = [extra for extra, names in extras.items() if distribution in names]
        assert holding, f"{distribution} is imported by {sorted(files)} but not declared"
        eager = [file for file, at_import in files.items() if at_import]
        assert not eager, f"{distribution} (extra {holding}) is imported when {eager} is imported"


def _copy_source(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = NOT_SOURCE_AT_TOP if Path(folder) == REPO else set()
        return set(NOT_SOURCE(folder, names)) | (top & set(names))

    shutil.copytree(REPO, target, ignore=ignore)
    return target


def _build(kind: str, source: Path, out: Path) -> Path:
    """``build_sdist`` / ``build_wheel`` of setuptools' PEP 517 backend, run in ``source``: what pip runs, offline."""
    out.mkdir(exist_ok=True)
    code = f"from setuptools import build_meta; print(build_meta.build_{kind}({str(out)!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / result.stdout.strip().splitlines()[-1]


def test_sdist_and_wheel_install_into_a_fresh_venv_and_classify(tmp_path: Path) -> None:
    source = _copy_source(tmp_path / "src")
    sdist = _build("sdist", source, tmp_path / "dist")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        archive.extractall(tmp_path / "unpacked", filter="data")
    needed = {str(path.relative_to(source)) for folder in ("tests", "samples", "scripts", "audioclf")
              for path in (source / folder).rglob("*") if path.is_file()}
    needed |= {"Makefile", "LICENSE", "README.md", "pyproject.toml", ".ci/run"}
    assert not needed - names, f"missing from the sdist: {sorted(needed - names)[:10]}"

    # the wheel is built from the unpacked sdist, as pip does for an sdist
    wheel = _build("wheel", tmp_path / "unpacked" / sdist.name.removesuffix(".tar.gz"), tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    modules = {str(path.relative_to(source)) for path in (source / "audioclf").rglob("*.py")}
    assert not modules - files, f"modules missing from the wheel: {sorted(modules - files)}"
    assert {"audioclf/py.typed", "audioclf/assets/default-model/model.safetensors"} <= files
    assert not any(name.startswith(("tests/", "samples/")) for name in files)

    # A fresh venv outside the repository. Its dependencies come from this environment's site-packages (every
    # entry but audioclf itself, through a .pth file) so nothing is downloaded; pip must find them all installed.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                           text=True).strip())
    borrowed = tmp_path / "borrowed"
    borrowed.mkdir()
    ours = re.compile(r"(?i)^(_*editable_*[._]*audioclf.*|audioclf([-_.].*)?)$")
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not ours.match(entry.name) and not entry.name.endswith(".pth"):
            (borrowed / entry.name).symlink_to(entry)
    (purelib / "borrowed.pth").write_text(f"{borrowed}\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                              "--no-build-isolation", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]

    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(REPO / "samples" / "synth_yes_en-gb.wav", work / "yes.wav")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    where = subprocess.run([str(python), "-c", "import audioclf; print(audioclf.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).is_relative_to(purelib), where.stdout + where.stderr
    result = subprocess.run([str(venv / "bin" / "audioclf"), "classify", "yes.wav"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["path"] == "yes.wav" and record["model"] == "audioclf/default"
    assert record["labels"][0]["label"] == "yes"
