"""Commentary to HTML: the light markup of refvae's docstrings, comments and Markdown docs, with LaTeX as MathML.

The markup, all of it (documented for authors in docs/pages.md):

- ``$ ... $`` is inline mathematics and ``$$ ... $$`` display mathematics, in LaTeX;
- a ``.. math::`` line followed by indented lines is display mathematics (one equation per blank-line-separated
  group), as in Sphinx;
- a paragraph ending in ``::`` is followed by an indented literal block, shown as written;
- ``- `` or ``* `` starts a list item, ``1. `` a numbered one; a line of dashes under a line makes it a heading,
  and a line of dashes alone (or ``---- title ----``) a rule;
- ```code``` and ````code````, ``:func:`name``` and its kin, ``**bold**``; in Markdown, ``# headings``,
  ``[text](target)`` links and ``| tables |``.

LaTeX becomes MathML when the page is built (latex2mathml: pure Python, so the pages need no script and no
network to show the mathematics); a command the converter does not know fails the build, naming the formula.
"""

from __future__ import annotations

import html
import re

__all__ = ["MathError", "block_html", "inline_html", "math_html"]


class MathError(ValueError):
    """A formula that does not convert to MathML."""


_LEFT_AS_TEXT = re.compile(r">[^<]*\\[^<]*<")        # a backslash the converter did not turn into mathematics


def math_html(tex: str, display: bool = False) -> str:
    """LaTeX ``tex`` as a MathML element (``display``: a block of its own)."""
    from latex2mathml.converter import convert

    try:
        out = convert(tex.strip(), display="block" if display else "inline")
    except Exception as err:                                   # the converter raises several kinds
        raise MathError(f"the formula ${tex}$ does not convert to MathML: {err}") from err
    unknown = _LEFT_AS_TEXT.search(out)
    if unknown:
        raise MathError(f"the formula ${tex}$ leaves {unknown[0][1:-1].strip()} as text: latex2mathml does not "
                        "know it; write it with commands it knows")
    if "<mi>&</mi>" in out:
        raise MathError(f"the formula ${tex}$ aligns with &, which latex2mathml shows as text: write one equation "
                        "per line instead")
    return out


# ---- inline markup -------------------------------------------------------------------------------------------
_INLINE = re.compile(
    r"(?P<math>\$(?!\$)(?P<tex>[^$\n]+?)\$)"                  # $ ... $
    r"|(?P<role>:(?:func|class|meth|attr|data|mod|obj):`~?(?P<target>[^`]+)`)"
    r"|(?P<code2>``(?P<c2>[^`]+?)``)"
    r"|(?P<code1>`(?P<c1>[^`]+?)`)"
    r"|(?P<bold>\*\*(?P<b>[^*]+?)\*\*)"
    r"|(?P<link>\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\))")


def inline_html(text: str, link_code=None, link_href=None) -> str:
    """One line or paragraph of commentary as HTML. ``link_code(name)`` may return an href for a code span (the
    page that shows that function); ``link_href(href)`` rewrites a Markdown link's target (None: plain text)."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        pos = m.end()
        if m["math"]:
            out.append(math_html(m["tex"]))
        elif m["link"]:
            href = link_href(m["href"]) if link_href else m["href"]
            inner = inline_html(m["text"], link_code)
            out.append(f'<a href="{html.escape(href)}">{inner}</a>' if href else inner)
        elif m["bold"]:
            out.append(f"<strong>{inline_html(m['b'], link_code)}</strong>")
        else:
            name = m["target"] or m["c2"] or m["c1"]
            code = f"<code>{html.escape(name, quote=False)}</code>"
            href = link_code(name) if link_code else None
            out.append(f'<a href="{html.escape(href)}">{code}</a>' if href else code)
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


# ---- blocks --------------------------------------------------------------------------------------------------
_RULE = re.compile(r"^\s*-{4,}(?P<title>[^-].*?)?-*\s*$")
_ITEM = re.compile(r"^(?P<indent>\s*)(?P<mark>[-*]|\d+\.)\s+(?P<rest>.*)$")


def _indented_block(lines, i):
    """The indented lines from ``i`` (blank lines inside kept), dedented, and the index after them."""
    block, j = [], i
    while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
        block.append(lines[j])
        j += 1
    while block and not block[-1].strip():
        block.pop()
        j -= 1
    while block and not block[0].strip():
        block.pop(0)
    width = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
    return [b[width:] for b in block], j


def _display_equations(block) -> list:
    """The equations of a ``.. math::`` block: blank-line-separated groups, each joined into one formula."""
    groups, current = [], []
    for line in block + [""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            groups.append(" ".join(current))
            current = []
    return groups


def block_html(text: str, link_code=None, link_href=None, after_equation: str = "") -> str:
    """Commentary (a docstring, a comment block, Markdown) as HTML blocks. ``after_equation`` is appended to
    every display equation (the link to the test that checks it)."""
    lines, i, out = text.splitlines(), 0, []
    para = []

    def flush():
        if para:
            out.append(_paragraph(" ".join(s.strip() for s in para), link_code, link_href, after_equation))
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
        elif stripped.startswith(".. math::"):
            flush()
            block, i = _indented_block(lines, i + 1)
            out += [_equation(tex, after_equation) for tex in _display_equations(block)]
        elif stripped.startswith("$$") and stripped.endswith("$$") and len(stripped) > 4:
            flush()
            out.append(_equation(stripped[2:-2], after_equation))
            i += 1
        elif _RULE.match(line):
            flush()
            title = (_RULE.match(line)["title"] or "").strip()
            out.append(f'<h4 class="rule">{inline_html(title, link_code)}</h4>' if title else "<hr>")
            i += 1
        elif _is_heading(lines, i) and not para:
            out.append(f"<h4>{inline_html(stripped, link_code)}</h4>")
            i = _fields(lines, i + 2, out, link_code) if stripped in _FIELD_SECTIONS else i + 2
        elif stripped.startswith("#") and link_href is not None:          # a Markdown heading
            flush()
            level = min(len(stripped) - len(stripped.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{inline_html(stripped.lstrip('#').strip(), link_code, link_href)}</h{level}>")
            i += 1
        elif stripped.startswith("|") and link_href is not None:          # a Markdown table
            flush()
            i = _table(lines, i, out, link_code, link_href)
        elif stripped.startswith("```") and link_href is not None:      # a Markdown code fence
            flush()
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")), len(lines))
            out.append(f'<pre class="literal">{html.escape(chr(10).join(lines[i + 1:end]), quote=False)}</pre>')
            i = end + 1
        elif _ITEM.match(line) and not para:
            i = _list(lines, i, out, link_code, link_href)
        elif stripped.endswith("::") and not stripped.startswith(".."):
            para.append(stripped[:-1] if not stripped.endswith(" ::") else stripped[:-3])
            flush()
            block, i = _indented_block(lines, i + 1)
            if block:
                out.append(f'<pre class="literal">{html.escape(chr(10).join(block), quote=False)}</pre>')
        else:
            para.append(line)
            i += 1
    flush()
    return "\n".join(out)


_FIELD_SECTIONS = ("Parameters", "Returns", "Yields", "Raises", "Attributes", "Other Parameters")


def _is_heading(lines, i) -> bool:
    """A numpydoc heading: a line with a line of dashes under it."""
    return i + 1 < len(lines) and bool(lines[i].strip()) and bool(re.fullmatch(r"\s*-{3,}\s*", lines[i + 1]))


def _fields(lines, i, out, link_code) -> int:
    """A numpydoc section's fields from line ``i`` (``name : type`` at the margin, the description indented below)
    as a definition list; ends at the next heading, or at text back at the margin after a blank line."""
    fields = []
    while i < len(lines) and not _is_heading(lines, i):
        line = lines[i]
        if not line.strip():
            if i + 1 < len(lines) and lines[i + 1].strip() and not lines[i + 1].startswith((" ", "\t")) \
                    and " : " not in lines[i + 1]:
                break
        elif line.startswith((" ", "\t")) and fields:
            fields[-1][1].append(line.strip())
        else:
            fields.append((line.strip(), []))
        i += 1
    items = []
    for term, description in fields:
        name, sep, kind = term.partition(" : ")
        dt = f"<code>{html.escape(name, quote=False)}</code> : {inline_html(kind, link_code)}" if sep \
            else inline_html(term, link_code)
        items.append(f"<dt>{dt}</dt><dd>{inline_html(' '.join(description), link_code)}</dd>")
    out.append(f'<dl class="fields">{"".join(items)}</dl>')
    return i


def _equation(tex: str, after: str) -> str:
    return f'<div class="equation">{math_html(tex, display=True)}{after}</div>'


def _paragraph(text, link_code, link_href, after_equation) -> str:
    """A paragraph; one that is a single ``$$ ... $$`` is a display equation."""
    if text.startswith("$$") and text.endswith("$$") and text.count("$$") == 2:
        return _equation(text[2:-2], after_equation)
    return f"<p>{inline_html(text, link_code, link_href)}</p>"


def _list(lines, i, out, link_code, link_href) -> int:
    """A list from line ``i``: items start with - * or 1., continuation lines are indented; an item indented
    deeper than the first opens a list inside the item before it."""
    items = []                                            # (indent, ordered, [lines])
    while i < len(lines):
        if not lines[i].strip():                          # a blank line inside the list, or its end
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j == len(lines) or not lines[j].startswith((" ", "\t")) and not _ITEM.match(lines[j]):
                break
            i = j
        m = _ITEM.match(lines[i])
        if m:
            items.append((len(m["indent"]), m["mark"][0].isdigit(), [m["rest"]]))
        else:
            items[-1][2].append(lines[i].strip())
        i += 1
    out.append(_nested(items, 0, link_code, link_href)[0])
    return i


def _nested(items, k, link_code, link_href):
    """HTML of the list whose first item is ``items[k]`` (deeper items nested), and the index after it."""
    indent, ordered, html_items = items[k][0], items[k][1], []
    while k < len(items) and items[k][0] >= indent:
        if items[k][0] > indent:                      # a list inside the previous item
            inner, k = _nested(items, k, link_code, link_href)
            html_items[-1] = html_items[-1][:-5] + inner + "</li>"
            continue
        html_items.append(f"<li>{inline_html(' '.join(items[k][2]), link_code, link_href)}</li>")
        k += 1
    tag = "ol" if ordered else "ul"
    return f"<{tag}>{''.join(html_items)}</{tag}>", k


def _cells(line: str) -> list:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def _table(lines, i, out, link_code, link_href) -> int:
    rows = []
    while i < len(lines) and lines[i].strip().startswith("|"):
        rows.append(_cells(lines[i]))
        i += 1
    head, body = rows[0], [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
    th = "".join(f"<th>{inline_html(c, link_code, link_href)}</th>" for c in head)
    tr = "".join("<tr>" + "".join(f"<td>{inline_html(c, link_code, link_href)}</td>" for c in r) + "</tr>"
                 for r in body)
    out.append(f"<table><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>")
    return i
