"""Packaging glue that pyproject.toml alone cannot express.

The top-level ``resources/`` folder (icons, style sheets, the bundled sample images) ships inside
the wheel as the ``annotator.resources`` package, so code finds it with
``importlib.resources.files("annotator.resources")`` in editable and regular installs alike.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["annotator", "annotator.*", "training", "training.*"]),
        "annotator.resources",
    ],
    package_dir={"annotator.resources": "resources"},
)
