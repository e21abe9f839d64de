"""Reading GitHub's `Link` pagination header.

GitHub gives absolute URLs (often in the `/repositories/{id}/...` form): they are followed as
given, never rebuilt from the first request.
"""

from __future__ import annotations

import re

__all__ = ["parse_link_header", "next_page_url"]

_LINK = re.compile(r"<(?P<url>[^>]*)>(?P<params>[^,<]*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s;,]+))""", re.IGNORECASE)


def parse_link_header(value: str | None) -> dict[str, str]:
    """{'next': url, 'last': url, ...}; an absent or malformed header gives {}."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK.finditer(value):
        rel = _REL.search(match.group("params"))
        if rel is None:
            continue
        # rel may hold several space-separated relations ("next last" is legal).
        for name in (rel.group("quoted") or rel.group("bare") or "").split():
            links.setdefault(name.lower(), match.group("url").strip())
    return links


def next_page_url(value: str | None) -> str | None:
    return parse_link_header(value).get("next")
