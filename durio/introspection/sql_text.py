"""The few words of SQL text durio reads itself before SQLite does.

Restate's queries (and its UI's) name sys_journal's `index` column bare, as
DataFusion allows; in SQLite `index` is a keyword. A read-only query has no
use for the keyword (CREATE INDEX and REINDEX are refused anyway, and
`INDEXED BY` is another word), so every bare `index` is quoted. And a query is
one statement: text after the first `;` other than comments is refused.
"""

from __future__ import annotations


class SqlTextError(ValueError):
    """The text is not one statement."""


def prepare_query(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    ended = False  # a `;` was seen: only blanks and comments may follow
    while i < n:
        char = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(text[i:end])
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(text[i:end])
            i = end
            continue
        if char.isspace():
            out.append(char)
            i += 1
            continue
        if ended:
            raise SqlTextError("one statement at a time: remove what follows the first ';'")
        if char == ";":
            ended = True
            i += 1
            continue
        if char in "'\"`[":
            close = "]" if char == "[" else char
            end = i + 1
            while end < n:
                if text[end] == close:
                    if close != "]" and end + 1 < n and text[end + 1] == close:
                        end += 2  # a doubled quote stands for itself
                        continue
                    break
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
            continue
        if char.isalnum() or char == "_":
            end = i
            while end < n and (text[end].isalnum() or text[end] in "_$"):
                end += 1
            word = text[i:end]
            out.append('"index"' if word.lower() == "index" else word)
            i = end
            continue
        out.append(char)
        i += 1
    return "".join(out)
