"""Data in a prompt, quoted so that no piece of it can close its quote and speak as the prompt.

Source rows, code under review, earlier findings, playbook answers and a model's earlier output are what anyone
could have written. A prompt puts each between `<tag>` and `</tag>` (the system prompt says what is inside is data,
never instructions); `quoted(text, tags)` turns whatever in the text would open or close one of those tags into
a look-alike that does not (`<` becomes `‹`), and `attribute(value)` is a value safe inside `id="..."`.

    f'<chunk id="{attribute(chunk_id)}">\n{quoted(code, TAGS)}\n</chunk>'
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable


@functools.cache
def _tag_pattern(tags: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"<(\s*/?\s*(?:{'|'.join(map(re.escape, tags))})\b)", re.IGNORECASE)


def quoted(text: str, tags: Iterable[str]) -> str:
    """`text` with every opening or closing `tags` tag in it made inert; nothing else changes (line numbers hold)."""
    return _tag_pattern(tuple(tags)).sub(r"‹\1", text)


def attribute(value: object) -> str:
    """`value` as one line, escaped for a double-quoted tag attribute."""
    return html.escape(" ".join(str(value).split()), quote=True)
