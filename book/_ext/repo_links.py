"""Point the repository and launch buttons at the repository the book is built from.

jupyter-book 1.x reads the repository URL from ``_config.yml``; written there it is
wrong in every fork and clone, and left out it defaults to jupyter-book's own
repository. This Sphinx extension asks git instead, at build time (``config-inited``):

- ``git remote get-url origin`` is an https or ssh URL of a GitHub, GitLab or Bitbucket
  repository: the repository button links to it, Binder launches it (``environment.yml``
  and ``postBuild`` at the root), Colab opens GitHub notebooks; the branch is the
  checked-out one.
- anything else (no git, no remote, a local path as in a fresh ``git clone /some/dir``,
  an
  unknown host): no repository or launch buttons at all, so the book has no dead links.

The options are updated in place on ``html_theme_options`` (whatever ``_config.yml``
already put there, e.g. with ``recursive_update``, is kept). ``CONVBOOK_REPO_URL``
overrides the remote (an empty value switches the buttons off).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

PROVIDERS = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
}
BINDER_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"

_SCP_LIKE = re.compile(r"^(?:[\w.+-]+@)?(?P<host>[\w.-]+):(?P<path>(?!/)[^\s]+)$")


def _git(args: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def https_url(remote: str) -> str | None:
    """Return the https URL of a hosted git remote, or None if it is not one.

    >>> https_url("git@github.com:someone/convbook.git")
    'https://github.com/someone/convbook'
    >>> https_url("ssh://git@gitlab.com/group/convbook.git")
    'https://gitlab.com/group/convbook'
    >>> https_url("https://user:token@github.com/someone/convbook/")
    'https://github.com/someone/convbook'
    >>> https_url("/srv/clones/convbook") is None
    True
    """
    remote = remote.strip()
    m = re.match(
        r"^(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$",
        remote,
    )
    if m is None:
        m = _SCP_LIKE.match(remote)
    if m is None:
        return None
    host = m.group("host").lower()
    if host.startswith("www."):
        host = host[4:]
    path = m.group("path").strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    if host not in PROVIDERS or path.count("/") != 1 or not all(path.split("/")):
        return None
    return f"https://{host}/{path}"


def repository_options(root: Path) -> dict:
    """Theme options for the repository at ``root`` (no buttons when there is none)."""
    override = os.environ.get("CONVBOOK_REPO_URL")
    remote = (
        override
        if override is not None
        else _git(["remote", "get-url", "origin"], root)
    )
    url = https_url(remote) if remote else None
    if url is None:
        if remote:
            logger.info(
                f"[repo_links] remote {remote!r} is not a hosted repository: no buttons"
            )
        return {
            "repository_url": "",
            "use_repository_button": False,
            "use_issues_button": False,
            "use_edit_page_button": False,
            "launch_buttons": {},
        }
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], root)
    if not branch or branch == "HEAD":
        branch = "main"
    host = url.split("/")[2]
    launch = {"binderhub_url": BINDER_URL, "notebook_interface": "jupyterlab"}
    if PROVIDERS[host] == "github":  # Colab opens GitHub notebooks only
        launch["colab_url"] = COLAB_URL
    return {
        "repository_url": url,
        "repository_branch": branch,
        "path_to_docs": "",
        "use_repository_button": True,
        "use_issues_button": False,
        "use_edit_page_button": False,
        "launch_buttons": launch,
    }


def _on_config_inited(app, config) -> None:
    opts = config.html_theme_options
    if not isinstance(opts, dict):
        opts = {}
    found = repository_options(Path(app.srcdir))
    launch = found.pop("launch_buttons")
    opts.update(found)
    # Keep non-provider keys (e.g. thebe: false); drop any provider URL we did not set.
    merged = {
        k: v
        for k, v in (opts.get("launch_buttons") or {}).items()
        if not k.endswith("_url") and k != "notebook_interface"
    }
    merged.update(launch)
    opts["launch_buttons"] = merged if launch else {}
    config.html_theme_options = opts
    logger.info(f"[repo_links] repository_url={opts['repository_url']!r}")


def setup(app):
    app.connect("config-inited", _on_config_inited)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
