"""Plain text from the LaTeX that arXiv titles and abstracts carry, leaving literal text as written.

pylatexenc maps accents, special letters and math symbols well, but it reads every `%` as a comment and every `$` as
math, so a literal "10% of $5" would lose the rest of the text: it only ever sees the LaTeX fragments found here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

_BRACED = r"\{((?:[^{}]|\{[^{}]*\})*)\}"  # one argument, one level of nested braces
_STYLE = (
    "emph|textbf|textit|texttt|textsc|textrm|textsf|textsl|textup|textnormal|underline|mbox|text|url|"
    "mathrm|mathbf|mathit|mathsf|mathtt|boldsymbol"
)
_DECLARATION = "em|bf|it|tt|sc|rm|sf|sl|small|large|Large|footnotesize"
_COLOURS = "blue|red|green|magenta|cyan|purple|orange|gray|grey|teal|violet|brown|black"
_LETTERS = r"ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j"
_FRAGMENT = re.compile(
    "|".join(
        (
            r"(?P<escape>\\[%&_#${}])",
            rf"(?P<accent>\\[\"'`^~=.](?:\{{\\?[A-Za-z]\}}|\\[ij](?![A-Za-z])|[A-Za-z])"
            rf"|\\[cvuHkrdb](?:\{{\\?[A-Za-z]\}}|\s+[A-Za-z](?![A-Za-z]))"
            rf"|\{{\\[\"'`^~=.][A-Za-z]\}}|\\(?:{_LETTERS})(?![A-Za-z]))",
            rf"(?P<style>\\(?:{_STYLE})\s*{_BRACED})",
            rf"(?P<href>\\href\s*\{{[^{{}}]*\}}\s*{_BRACED})",
            rf"(?P<colour>\\(?:textcolor|color)\s*\{{[a-zA-Z]+\}}\s*{_BRACED}|\b(?:{_COLOURS}){_BRACED})",
            rf"(?P<declaration>\{{\\(?:{_DECLARATION})\s+((?:[^{{}}]|\{{[^{{}}]*\}})*)\}})",
            r"(?P<display>\$\$((?:[^$\\]|\\.)+)\$\$)",
            # pandoc's rule: no space just inside either dollar and no digit right after the closing one, so the
            # dollars of "$5 and $10" never pair up and swallow the LaTeX between them.
            r"(?P<math>\$(?=\S)((?:[^$\\]|\\.)+?)(?<=\S)\$(?!\d))",
            r"(?P<paren>\\\((.+?)\\\))",
            r"(?P<quotes>``(.{0,300}?)'')",
            r"(?P<open>``)",
        )
    ),
    re.DOTALL,
)
_MATH_SIGNS = re.compile(r"[\\^_{}=<>+]")
_MATH_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,2}(?:\([^()]*\))?")


@lru_cache(maxsize=1)
def _converter() -> Any:
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text(math_mode="text")


@lru_cache(maxsize=8192)  # the same few fragments (\\%, $\\alpha$, \\"u) recur in abstract after abstract
def _latex(fragment: str) -> str:
    try:
        return unicodedata.normalize("NFC", str(_converter().latex_to_text(fragment)))
    except (RecursionError, ValueError, IndexError, KeyError, TypeError):  # malformed LaTeX is kept as written
        return fragment


def _is_math(body: str) -> bool:
    """Whether `$body$` is math rather than two literal dollar signs ("costs $5 and $10")."""
    if len(body) > 500 or body != body.strip() or re.search(r"(?<!\\)%", body):
        return False
    return bool(_MATH_SIGNS.search(body) or _MATH_NAME.fullmatch(body))


def _math(body: str) -> str:
    # LaTeX eats the space after a macro name ("\\log n" would read "logn"); an empty group keeps it.
    spaced = re.sub(r"(\\[A-Za-z]+)(\s)", r"\1{}\2", body)
    # NFKC turns the math alphabets pylatexenc writes (𝒪, 𝐱, ℝ) into letters that search can match.
    return unicodedata.normalize("NFKC", _latex(spaced)).strip()


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    text = match.group(0)
    inner = next((g for g in match.groups()[match.lastindex or 0 :] if g is not None), "")
    if kind == "escape":
        return text[1]
    if kind == "accent":
        return _latex(text)
    if kind in ("style", "href", "colour", "declaration"):
        return plain_text(inner)
    if kind in ("display", "math", "paren"):
        return _math(inner) if kind != "math" or _is_math(inner) else text
    if kind == "quotes":
        return f"“{plain_text(inner)}”"
    return "“"  # an opening `` whose closing quote is a plain "


def plain_text(text: str) -> str:
    """`text` with its LaTeX turned into plain Unicode; text without LaTeX comes back unchanged."""
    if "\\" not in text and "$" not in text and "{" not in text and "``" not in text:
        return text
    return _FRAGMENT.sub(_replace, text)
