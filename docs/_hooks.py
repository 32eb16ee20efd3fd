"""MkDocs hook: links from a page to repository files outside ``docs/``.

The pages link to files beside the documentation (``../../analysis/README.md``,
``../../validation/README.md``) with relative paths, so that they work on GitHub. The site
holds only ``docs/``: there such a link is rewritten to the file in the repository when
``repo_url`` is set in ``mkdocs.yml``, and otherwise to its text with the file's path
(``analysis/README.md``). A link to a file that does not exist is left alone, so that MkDocs'
``validation.links.not_found`` reports it (an error under ``strict``).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.DOTALL | re.MULTILINE)
_CODE = re.compile(r"`+[^`\n]*`+")
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")


def _outside(page_src: str, target: str, docs_dir: Path, root: Path) -> str | None:
    """The repository path of a relative link target that leaves ``docs/``, else None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return None
    path = (docs_dir / posixpath.dirname(page_src) / target).resolve()
    try:
        path.relative_to(docs_dir)
        return None
    except ValueError:
        pass
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    return rel.as_posix() if path.exists() else None


def _rewrite(markdown: str, page_src: str, docs_dir: Path, root: Path, repo: str | None) -> str:
    def link(m: re.Match[str]) -> str:
        rel = _outside(page_src, m["target"], docs_dir, root)
        if rel is None:
            return m.group(0)
        if repo:
            kind = "tree" if (root / rel).is_dir() else "blob"
            return f"[{m['text']}]({repo}/{kind}/HEAD/{rel}{m['anchor'] or ''})"
        text = m["text"]
        return text if rel in text else f"{text} (`{rel}`)"

    def outside_code(part: str) -> str:
        spans = [c.span() for c in _CODE.finditer(part)]

        def maybe(m: re.Match[str]) -> str:
            inside = any(a <= m.start() < b for a, b in spans)
            return m.group(0) if inside else link(m)

        return _LINK.sub(maybe, part)

    out, pos = [], 0
    for f in _FENCE.finditer(markdown):
        out += [outside_code(markdown[pos : f.start()]), f.group(0)]
        pos = f.end()
    return "".join([*out, outside_code(markdown[pos:])])


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    root = Path(config["config_file_path"]).resolve().parent
    repo = (config.get("repo_url") or "").rstrip("/") or None
    return _rewrite(markdown, page.file.src_uri, docs_dir, root, repo)
