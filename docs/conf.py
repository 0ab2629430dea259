"""Sphinx configuration of the skinfluence documentation.

Build with ``python -m sphinx -W docs docs/_build``. The gallery over ``examples/`` renders code
only; set ``SKINFLUENCE_DOCS_RUN_EXAMPLES=1`` to execute every example (many minutes).
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

run_examples = os.environ.get("SKINFLUENCE_DOCS_RUN_EXAMPLES") == "1"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "plot_gallery": run_examples,
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "remove_config_comments": True,
}
