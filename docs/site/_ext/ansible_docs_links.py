"""Sphinx extension: resolve references to docs.ansible.com pages without fetching anything.

antsibull-docs writes ``:ref:`` targets that live in Ansible's own documentation: other collections'
plugins (``ansible_collections.kubernetes.core.helm_module``) and a few reference pages
(``common_return_values``). intersphinx would download Ansible's inventory to resolve them; this site
is built offline, so those labels are turned into plain links under ``ansible_docs_base_url``.
Every other missing reference is left alone, so it still fails a ``-W`` build.
"""

import re

from docutils import nodes

# Reference pages of docs.ansible.com that antsibull-docs links to: label -> (path, title).
REFERENCE_PAGES = {
    "common_return_values": ("reference_appendices/common_return_values.html", "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html", "Ansible Configuration Settings"),
    "action_plugins": ("plugins/action.html", "Action Plugins"),
}
_PLUGIN_LABEL = re.compile(r"^ansible_collections\.(?P<namespace>\w+)\.(?P<name>\w+)\.(?P<page>\w+)$")


def external_target(label, own_collection, base_url):
    """``(url, title)`` of a docs.ansible.com page for ``label``, or None when it is not one."""
    if label in REFERENCE_PAGES:
        path, title = REFERENCE_PAGES[label]
        return base_url + path, title
    match = _PLUGIN_LABEL.match(label)
    if not match or "%s.%s" % (match["namespace"], match["name"]) == own_collection:
        return None
    return (base_url + "collections/%s/%s/%s.html" % (match["namespace"], match["name"], match["page"]),
            label[len("ansible_collections."):])


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "std" or node.get("reftype") != "ref":
        return None
    target = external_target(node["reftarget"], app.config.project, app.config.ansible_docs_base_url)
    if target is None:
        return None
    url, title = target
    reference = nodes.reference("", "", internal=False, refuri=url)
    reference += contnode if node.get("refexplicit") else nodes.inline(title, title)
    return reference


def setup(app):
    app.add_config_value("ansible_docs_base_url", "https://docs.ansible.com/projects/ansible/devel/", "env")
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
