"""Packaging: the repository's top folders install under one import root, ``yilian``.

``server/`` is ``yilian.server``, ``signaling/`` is ``yilian.signaling``, ``dicom/`` is
``yilian.dicom`` and ``web/`` is ``yilian.web``; ``yilian`` itself is a namespace package.
Folders without ``__init__.py`` (the Alembic scripts, the browser client's static files) are
included as namespace packages, with their data files. The rest is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

ROOTS = ("server", "signaling", "dicom", "web")

package_dir = {f"yilian.{root}": root for root in ROOTS}
packages = [
    name
    for root in ROOTS
    for name in (f"yilian.{root}", *(f"yilian.{root}.{sub}" for sub in
                                      find_namespace_packages(root, exclude=["*node_modules*",
                                                                             "*__pycache__*"])))
]

setup(package_dir=package_dir, packages=packages)
