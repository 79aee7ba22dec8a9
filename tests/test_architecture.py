"""The layout the code promises: one import root, layers that point one way, small modules.

See docs/architecture.md. The layer contracts are in .importlinter (import-linter).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "signaling", "dicom", "web")
MAX_LINES = 500


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_import_contracts_are_kept() -> None:
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path: Path) -> None:
    """The contracts really bite: a copy of the tree whose core imports the clinic fails."""
    copy = tmp_path / "tree"
    for name in (*PACKAGES, ".importlinter"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, copy / "yilian" / name,
                            ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
        else:
            shutil.copy(src, copy / name)
    errors = copy / "yilian" / "server" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom yilian.server.clinic import workflow\n")
    env = {"PATH": "/usr/bin:/bin"}
    # The copy goes first on sys.path, ahead of the installed (editable) package.
    script = (f"import sys; sys.path.insert(0, {str(copy)!r}); "
              "from importlinter.cli import lint_imports_command; "
              "sys.argv = ['lint-imports', '--no-cache']; lint_imports_command()")
    result = subprocess.run([sys.executable, "-I", "-c", script],
                            cwd=copy, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "yilian.server.core.errors -> yilian.server.clinic.workflow" in result.stdout


def test_no_module_passes_500_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.slow
def test_the_wheel_installs_one_import_root(tmp_path: Path) -> None:
    """The wheel holds yilian/... and nothing else at the top (no server, dicom, web)."""
    source = tmp_path / "src"  # built from a copy: the build leaves build/ behind
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                             str(tmp_path), str(source)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("yilian-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"yilian"}
    assert "yilian/__init__.py" not in names  # a namespace: one root, no code of its own
    for expected in ("yilian/server/app.py", "yilian/server/core/db.py",
                     "yilian/server/clinic/workflow.py", "yilian/dicom/store.py",
                     "yilian/signaling/namespace.py", "yilian/web/index.html",
                     "yilian/server/migrations/env.py",
                     "yilian/server/migrations/script.py.mako",
                     "yilian/server/migrations/versions/0003_audit_uid.py",
                     "yilian/web/static/js/app.js"):
        assert expected in names, expected
    assert not any(n.startswith(("yilian/signaling/client", "yilian/signaling/peer"))
                   for n in names)


@pytest.mark.slow
def test_mypy_is_clean(tmp_path: Path) -> None:
    """mypy over the packages by their import names (a tree of links: yilian/<folder>)."""
    tree = tmp_path / "yilian"
    tree.mkdir()
    for name in PACKAGES:
        (tree / name).symlink_to(ROOT / name)
    result = subprocess.run([_tool("mypy"), "--config-file", str(ROOT / "pyproject.toml"),
                             "--explicit-package-bases", "--cache-dir", str(tmp_path / "cache"),
                             "-p", "yilian.server", "-p", "yilian.dicom", "-p",
                             "yilian.signaling"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_is_documented() -> None:
    """Each YILIAN_* variable the server reads is named in the README or docs/operations.md."""
    from yilian.server.core.settings import _FLAT, _GROUPS, Settings

    names = [f"YILIAN_{n.upper()}" for n in Settings.model_fields if n not in _GROUPS]
    names += [f"YILIAN_{n.upper()}" for n in _FLAT]
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "operations.md").read_text()
    assert [n for n in names if n not in docs] == []
