"""Packaging: the repository's top folders install under one import root, ``yilian``.

``server/`` is ``yilian.server``, ``signaling/`` is ``yilian.signaling``, ``dicom/`` is
``yilian.dicom`` and ``web/`` is ``yilian.web``; ``yilian`` itself is a namespace package. The
rest of the metadata is in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = ("server", "signaling", "dicom", "web")

package_dir = {f"yilian.{root}": root for root in ROOTS}
packages = [
    name
    for root in ROOTS
    for name in (f"yilian.{root}", *(f"yilian.{root}.{sub}" for sub in find_packages(root)))
]

setup(package_dir=package_dir, packages=packages)
