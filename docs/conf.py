"""Sphinx configuration of the skinfluence documentation.

``docs/run_gallery`` builds the published site: sphinx-gallery executes every example of
``examples/`` and embeds its figures (and the gallery thumbnails) and printed output. A build
that only checks the pages skips the execution with sphinx-gallery's own switch,
``python -m sphinx -W -D plot_gallery=0 docs docs/_build`` (what ``tests/test_docs.py`` runs).
"""

import os

import skinfluence

project = "skinfluence"
author = "the skinfluence developers"
copyright = "2025, the skinfluence developers"
release = version = skinfluence.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "gen_modules/*.examples", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_theme = "alabaster"
html_title = f"skinfluence {release}"

autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
# Parameter types are free-form prose ("fitted estimator", "array-like of shape ..."); do not
# turn them into cross-references that cannot resolve.
numpydoc_xref_param_type = False

# Links to other projects' docs need the network; keep the build offline.
intersphinx_mapping = {}

default_role = "literal"

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Examples executed: all by default; SKINFLUENCE_GALLERY_PATTERN narrows it to the paths that
    # match a regular expression (``docs/run_gallery plot_cox``), the others rendering as code.
    "filename_pattern": os.environ.get("SKINFLUENCE_GALLERY_PATTERN", "/plot_"),
    "plot_gallery": "True",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "remove_config_comments": True,
}
