"""What a post says, from an envelope: its title, its HTML and its slug (no I/O).

* The title is the envelope's ``subject`` (the plan row's or the campaign's); without one, the
  text's first sentence (up to the first ``.``, ``!`` or ``?`` followed by a space, or the first
  line; a final ``.`` dropped), cut at a word to at most :data:`TITLE_MAX` characters with ``…``.
* The HTML is the text escaped, one ``<p>`` per paragraph (paragraphs are separated by an empty
  line), a line break inside a paragraph as ``<br />``: nothing the text holds is read as markup.
* The slug, which WordPress keeps as the post's name in its URL, is made from the wave and the
  site, so the same wave on the same site always has the same slug and two waves never share one:
  ``loa-<wave>-<site>-<8 hex digits>``, lower case, anything but letters, digits and ``-``
  replaced by ``-``, the digits a digest of the exact wave and site ids (wave ids that differ
  only in case or punctuation still differ), at most :data:`SLUG_MAX` characters.
"""

from __future__ import annotations

import hashlib
import html
import re

TITLE_MAX = 100
SLUG_MAX = 190  # WordPress keeps 200 in post_name and may add "-2" to a slug it already has

_SENTENCE = re.compile(r"^(.+?[.!?])(?:\s|$)", re.DOTALL)
_PARAGRAPHS = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def title(subject: str, text: str) -> str:
    """The post's title: ``subject``, else the first sentence of ``text`` (see the module)."""
    chosen = subject.strip()
    if not chosen:
        first = text.strip().split("\n", 1)[0].strip()
        match = _SENTENCE.match(first)
        chosen = match.group(1) if match else first
        chosen = chosen.removesuffix(".")
    chosen = _SPACES.sub(" ", chosen).strip()
    if len(chosen) <= TITLE_MAX:
        return chosen
    cut = chosen[: TITLE_MAX - 1]
    space = cut.rfind(" ")
    if space > TITLE_MAX // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–") + "…"


def html_text(text: str) -> str:
    """The text as HTML paragraphs, escaped."""
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text.strip()) if p.strip()]
    return "\n".join("<p>" + "<br />\n".join(html.escape(line.strip())
                                             for line in p.split("\n")) + "</p>"
                     for p in paragraphs)


def slug(wave: str, site: str) -> str:
    """The slug of ``wave``'s post on ``site`` (see the module)."""
    digest = hashlib.sha256(f"{wave}\0{site}".encode()).hexdigest()[:8]
    words = _NOT_SLUG.sub("-", f"{wave}-{site}".lower()).strip("-")
    room = SLUG_MAX - len("loa--") - len(digest)
    return f"loa-{words[:room].rstrip('-')}-{digest}"
