# Sphinx configuration of the collection's documentation site: `make docs` renders the collection with
# antsibull-docs into build/docsite/rst, then runs sphinx-build with this folder as configuration.
# Started from `antsibull-docs sphinx-init --use-current cloudnet.cilium_eks` (antsibull-docs 2.28.0).
# Offline by design: no intersphinx (nothing is fetched); the few references to docs.ansible.com pages
# (other collections' plugins, common return values, configuration settings) are resolved to links
# by the local extension _ext/ansible_docs_links.py. Any other unresolved reference fails the build (-W).

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

project = "cloudnet.cilium_eks"
project_copyright = "Contributors to the cloudnet.cilium_eks project"

title = "cloudnet.cilium_eks documentation"
html_short_title = "cloudnet.cilium_eks"

extensions = ["sphinx_antsibull_ext", "ansible_docs_links"]

pygments_style = "ansible"

highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False

display_version = False

html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

# Base of the docs.ansible.com links: the one antsibull-docs sphinx-init maps to intersphinx (ansible_devel).
ansible_docs_base_url = "https://docs.ansible.com/projects/ansible/devel/"

default_role = "any"

nitpicky = True
