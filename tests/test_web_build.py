"""The browser libraries: pinned by web/package-lock.json, built by the install, never committed;
what the build writes is exactly what the pinned npm tarballs hold (npm ci checks them against
the lock's integrity), plus the recorded patches and Yilian's two generated files."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import brotli
import pytest

from yilian.web import build
from yilian.web.build import (
    NODE_MODULES,
    OHIF_DIR,
    OHIF_DIST,
    PATCHES,
    VENDOR_DIR,
    VENDOR_FILES,
    WEB_DIR,
    BuildError,
    Patch,
    apply_patches,
    expected_ohif,
    ohif_source_files,
)

ROOT = WEB_DIR.parent
SIBLINGS = (".gz", ".br")


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    """The install built them; build here only if this checkout has not been installed since."""
    build.ensure_built()


def _output(web: Path = WEB_DIR) -> dict[str, str]:
    """Every built file (OHIF and vendor) of ``web`` -> its SHA-256."""
    roots = (web / OHIF_DIR.relative_to(WEB_DIR), web / VENDOR_DIR.relative_to(WEB_DIR))
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    return {str(p.relative_to(web)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def test_the_lock_pins_ohif_echarts_and_socket_io_exactly() -> None:
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    manifest = json.loads((WEB_DIR / "package.json").read_text())
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"] == {
        "@ohif/app": "3.13.2", "echarts": "6.1.0", "socket.io-client": "4.8.1"}
    ohif = lock["packages"]["node_modules/@ohif/app"]
    assert ohif["version"] == "3.13.2"
    assert ohif["integrity"] == ("sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjj"
                                 "kycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==")
    # its dependencies are bundled in dist/ (and not all on the registry): npm must fetch none
    assert "dependencies" not in ohif
    for name, entry in lock["packages"].items():
        if name:
            assert entry["integrity"].startswith("sha512-"), name
    for name in ("@ohif/app", "echarts", "socket.io-client"):
        installed = json.loads((NODE_MODULES / name / "package.json").read_text())
        assert installed["version"] == lock["packages"][f"node_modules/{name}"]["version"]


def test_git_holds_no_third_party_code() -> None:
    tracked = subprocess.run(["git", "ls-files", "web"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked, "not a git checkout?"
    built_dirs = ("web/node_modules/", "web/ohif/", "web/static/vendor/")
    assert [f for f in tracked if f.startswith(built_dirs) or f == "web/build.stamp"] == []
    assert [f for f in tracked if f.endswith((".min.js", ".map", ".wasm"))] == []
    # nothing tracked is a copy of a file of the installed packages
    installed = {hashlib.sha256(p.read_bytes()).digest() for p in NODE_MODULES.rglob("*")
                 if p.is_file() and p.stat().st_size > 2048 and p.name != "package.json"}
    copies = [f for f in tracked
              if hashlib.sha256((ROOT / f).read_bytes()).digest() in installed]
    assert copies == []


def test_vendor_files_are_the_npm_package_files() -> None:
    for package, files in VENDOR_FILES.items():
        written = {p.name for p in (VENDOR_DIR / package).iterdir()}
        assert written == set(files.values())
        for source, name in files.items():
            assert ((VENDOR_DIR / package / name).read_bytes()
                    == (NODE_MODULES / package / source).read_bytes()), name
    # the URL web/static/js/features/call.js imports
    assert (VENDOR_DIR / "socket.io-client" / "socket.io.esm.min.js").stat().st_size > 10_000


def test_ohif_files_are_the_package_files_patched_as_recorded() -> None:
    originals = {rel.as_posix(): (OHIF_DIST / rel).read_bytes()
                 for rel in ohif_source_files()}
    patched = apply_patches(originals)
    assert sorted(patched) == sorted([
        "index.html", "app.bundle.css",
        *[n for n in originals if n.endswith(".js") and "/" not in n
          and b'__webpack_require__.p = "/";' in originals[n]]])
    expected = expected_ohif()
    written = {p.relative_to(OHIF_DIR).as_posix() for p in OHIF_DIR.rglob("*")
               if p.is_file() and p.suffix not in SIBLINGS}
    assert written == set(expected)
    for rel, content in expected.items():
        on_disk = (OHIF_DIR / rel).read_bytes()
        assert on_disk == content, rel
        if rel in originals and rel not in patched:
            assert on_disk == originals[rel], rel
    # what was left out: the AI runtime, source maps, the unused service worker
    assert not (OHIF_DIR / "ort").exists() and (OHIF_DIST / "ort").is_dir()
    assert not list(OHIF_DIR.rglob("*.map")) and not (OHIF_DIR / "sw.js").exists()
    index = (OHIF_DIR / "index.html").read_text()
    assert '="/' not in index.replace('="/ohif/', "")
    assert "<script>" not in index  # no inline script: the CSP forbids them
    assert index.count('src="/ohif/yilian-init.js"') == 1
    config = (OHIF_DIR / "app-config.js").read_text()
    assert 'routerBasename: "/ohif"' in config and '"yilian.token"' in config


def test_compressed_siblings_hold_the_same_bytes() -> None:
    siblings = [p for p in OHIF_DIR.rglob("*") if p.suffix in SIBLINGS]
    assert len(siblings) > 100
    app_bundle = next(OHIF_DIR.glob("app.bundle.*.js"))
    assert app_bundle.with_name(app_bundle.name + ".br").is_file()
    assert app_bundle.with_name(app_bundle.name + ".gz").is_file()
    for path in siblings:
        original = path.with_suffix("").read_bytes()
        packed = path.read_bytes()
        unpacked = gzip.decompress(packed) if path.suffix == ".gz" else brotli.decompress(packed)
        assert unpacked == original, path
        assert len(packed) <= 0.9 * len(original), path


def test_a_patch_that_no_longer_applies_stops_the_build() -> None:
    files = {"index.html": b"<p>moved</p>", "a.js": b"x"}
    with pytest.raises(BuildError, match=r"applies to 0 files"):
        apply_patches(files)
    real = {rel.as_posix(): (OHIF_DIST / rel).read_bytes() for rel in ohif_source_files()
            if rel.suffix in (".html", ".js", ".css") and "/" not in rel.as_posix()}
    # an upgrade that adds one absolute URL to index.html
    grown = dict(real, **{"index.html": real["index.html"] + b'<link href="/new.css">'})
    with pytest.raises(BuildError, match=r"36 times in index.html, expected 35"):
        apply_patches(grown)
    # an upgrade that drops the public path from one chunk
    chunk = next(n for n, b in real.items() if n.startswith("compute.") and n.endswith(".js"))
    shrunk = dict(real, **{chunk: real[chunk].replace(b'__webpack_require__.p = "/";', b"")})
    with pytest.raises(BuildError, match=r"applies to 7 files"):
        apply_patches(shrunk)
    assert PATCHES[0] == Patch("index.html", '="/', '="/ohif/', 35, 1)


def test_the_build_is_a_no_op_when_up_to_date() -> None:
    before = build.STAMP.stat().st_mtime_ns
    assert build.build() is False
    assert build.STAMP.stat().st_mtime_ns == before
    check = subprocess.run([sys.executable, "-m", "yilian.web.build", "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


@pytest.mark.slow
def test_deleting_the_output_and_building_again_reproduces_it(tmp_path) -> None:
    """What the README's first command does on a clone whose output was deleted: built from
    the lock alone, in a copy of web/ (the tree's own output is served by the other tests,
    which CI runs at the same time on the other database), it is the same, file for file."""
    copy = tmp_path / "web"
    copy.mkdir()
    for name in ("build.py", "package.json", "package-lock.json"):
        shutil.copy2(WEB_DIR / name, copy / name)
    result = subprocess.run([sys.executable, str(copy / "build.py")], capture_output=True,
                            text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (copy / build.STAMP.name).read_text() == build.STAMP.read_text()
    assert _output(copy) == _output()


def test_a_tarball_that_does_not_match_the_lock_stops_the_build(tmp_path) -> None:
    """npm refuses a package whose bytes differ from the lock's integrity: a clear BuildError,
    nothing installed."""
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    manifest = {"name": "t", "version": "0.0.0", "private": True,
                "dependencies": {"socket.io-client": "4.8.1"}}
    keep = {"", "node_modules/socket.io-client", "node_modules/@socket.io/component-emitter",
            "node_modules/engine.io-client", "node_modules/engine.io-parser",
            "node_modules/socket.io-parser", "node_modules/debug", "node_modules/ms",
            "node_modules/ws", "node_modules/xmlhttprequest-ssl"}
    lock["packages"] = {k: v for k, v in lock["packages"].items()
                        if k in keep or k.startswith(("node_modules/engine.io-client/",
                                                      "node_modules/socket.io-parser/"))}
    lock["packages"][""] = {"name": "t", "version": "0.0.0",
                            "dependencies": manifest["dependencies"]}
    lock["packages"]["node_modules/socket.io-client"]["integrity"] = (
        "sha512-" + "A" * 86 + "==")
    (tmp_path / "package.json").write_text(json.dumps(manifest))
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    with pytest.raises(BuildError, match=r"(?s)npm ci failed .*EINTEGRITY"):
        build.npm_ci(tmp_path)
    assert not (tmp_path / "node_modules" / "socket.io-client").exists()
