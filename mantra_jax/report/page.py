"""The HTML of a report: escaping, one stylesheet, one small plain script (sort, filter, pages), tables.

Everything a page needs is inline or a relative file under ``report/``: nothing is fetched from anywhere
else, so the page works offline, opened from disk. Every text from a run (file names, reasons, settings)
goes through ``esc``: HTML-escaped (quotes, ``<``, ``&``), with the bytes of a name that is not UTF-8 shown
as ``\\xNN``. Links to thumbnails are relative and percent-encoded (``src``).

Sortable tables (``table``): a header cell with ``data-key`` sorts its column when clicked (numbers, with
"not available" always last; text case-insensitively); a text box filters by name; ``PAGE_ROWS`` rows a
page, the other pages reached with the pager. The page holds the first page of rows as HTML; all rows
are in a small script file beside it, loaded on the first sort, filter or page turn, so a table of
thousands of rows opens as fast as a short one and builds one page of rows and thumbnails (``lazy``).
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import urllib.parse
from typing import Any, Sequence

PAGE_ROWS = 100  # rows shown per page of a sortable table
DIGITS = 4  # decimals of every metric shown


def printable(value: Any) -> str:
    """``str(value)`` with the bytes of a name that is not UTF-8 (surrogate escapes) as ``\\xNN``."""
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def esc(value: Any) -> str:
    """Text of ``value`` safe inside HTML text and quoted attributes."""
    return html.escape(printable(value), quote=True)


def src(relative: str) -> str:
    """A relative file name as a quoted-attribute-safe URL (percent-encoded)."""
    return esc(urllib.parse.quote(relative))


def number(value: Any) -> str:
    """A metric as shown: ``DIGITS`` decimals; None / NaN / missing as ``n/a``."""
    v = as_float(value)
    return "n/a" if v is None else f"{v:.{DIGITS}f}"


def as_float(value: Any) -> float | None:
    """A finite float, or None (None, "", NaN, text that is no number)."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def img(relative: str | None, alt: str, size: tuple[int, int] | None = None) -> str:
    """An ``<img>`` of a report thumbnail (lazy), or a note when there is none."""
    if not relative:
        return f'<span class="none">{esc(alt)}: not available</span>'
    wh = f' width="{size[1]}" height="{size[0]}"' if size else ""
    return f'<img src="{src(relative)}" alt="{esc(alt)}" loading="lazy"{wh}>'


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: ``key`` (row field), ``label``, ``kind`` "num" (sortable number), "text" (sortable)
    or "html" (a cell's ready HTML, not sortable)."""

    key: str
    label: str
    kind: str = "num"
    title: str = ""


def table(table_id: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]], *, rows_src: str,
          sorted_by: str = "", ascending: bool = True, name_key: str = "name") -> tuple[str, str]:
    """A sortable, filterable, paged table (module docstring). ``rows``: field -> value ("html" columns:
    ready HTML; a "num" column's text may be given as ``<key>_shown``), in their initial order
    (``sorted_by`` / ``ascending`` mark the header).

    Returns ``(html, rows_script)``: the page holds the first ``PAGE_ROWS`` rows; ``rows_script``, to be
    written at ``rows_src`` (relative to the page), holds every row's HTML and sort keys, and is loaded
    only when the table is first sorted, filtered or paged. So the page opens in the same time whatever
    the number of rows, and the browser only ever builds one page of rows and thumbnails."""
    sortable = [c for c in columns if c.kind != "html"]
    head = []
    for c in columns:
        title = f' title="{esc(c.title)}"' if c.title else ""
        if c.kind == "html":
            head.append(f"<th{title}>{esc(c.label)}</th>")
        else:
            mark = f' data-dir="{"asc" if ascending else "desc"}"' if c.key == sorted_by else ""
            head.append(f'<th data-key="{esc(c.key)}" data-col="{sortable.index(c)}" data-type="{c.kind}"{mark}'
                        f'{title}>{esc(c.label)}</th>')
    data = []
    for row in rows:
        cells, keys = [], []
        for c in columns:
            value = row.get(c.key)
            if c.kind == "html":
                cells.append(f"<td>{value or ''}</td>")
            elif c.kind == "num":
                v = as_float(value)
                keys.append(v)
                shown = row.get(f"{c.key}_shown", number(value))
                cells.append(f'<td class="num" data-v="{"" if v is None else repr(v)}">{esc(shown)}</td>')
            else:
                text = printable("" if value is None else value)
                keys.append(text.lower())
                cells.append(f"<td>{html.escape(text, quote=True)}</td>")
        data.append({"h": f"<tr>{''.join(cells)}</tr>", "k": keys,
                     "n": printable(row.get(name_key, "")).lower()})
    n_pages = max(1, math.ceil(len(rows) / PAGE_ROWS))
    pager = ""
    if n_pages > 1:
        pager = (f'<div class="pager" id="{table_id}-pager"><button type="button" data-step="-1">&larr; previous'
                 f'</button> <span class="info">page 1 of {n_pages}</span> <button type="button" data-step="1">'
                 f"next &rarr;</button></div>")
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    script = f"window.MANTRA_ROWS=window.MANTRA_ROWS||{{}};window.MANTRA_ROWS[{json.dumps(table_id)}]={blob};\n"
    return (f'<p><label>filter by name: <input type="search" id="{table_id}-filter"></label> '
            f'<span class="count" id="{table_id}-count">{len(rows)} row(s)</span></p>{pager}'
            f'<table class="sortable" id="{table_id}" data-page="{PAGE_ROWS}" data-rows="{src(rows_src)}"><thead>'
            f'<tr>{"".join(head)}</tr></thead><tbody>{"".join(d["h"] for d in data[:PAGE_ROWS])}</tbody></table>'), script


def definition_list(items: Sequence[tuple[str, Any]]) -> str:
    """A two-column table of settings: (label, value) -> escaped HTML."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc('n/a' if v is None else v)}</td></tr>" for k, v in items)
    return f'<table class="settings">{rows}</table>'


def bullet_list(items: Sequence[str], empty: str) -> str:
    """A list of escaped lines, or ``empty`` when there is none."""
    if not items:
        return f"<p>{esc(empty)}</p>"
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:110em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:middle}
th[data-key]{cursor:pointer;background:#f3f3f3}th[data-dir=asc]::after{content:" \\25B2"}
th[data-dir=desc]::after{content:" \\25BC"}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.settings th{text-align:left;background:#f7f7f7}.partial{background:#fff3cd;border:1px solid #e0c060;
padding:.6em}.none{color:#999;font-size:.85em}img{display:block;max-width:192px;max-height:192px}
.figures img{display:inline-block;max-width:none;max-height:none;margin-right:1em}.figures figure{display:inline-block;margin:0 1em 0 0}
.legend span{padding:0 .4em;margin-right:.5em}.pager{margin:.3em 0}
"""

JS = """
(function(){
document.querySelectorAll('table.sortable').forEach(function(t){
var body=t.tBodies[0],size=parseInt(t.getAttribute('data-page'),10),page=0,all=null,shown=null,waiting=null,renders=0;
var filter=document.getElementById(t.id+'-filter'),count=document.getElementById(t.id+'-count');
var pager=document.getElementById(t.id+'-pager');
function withRows(f){if(all!==null){f();return;}if(waiting){waiting.push(f);return;}waiting=[f];
var s=document.createElement('script');s.src=t.getAttribute('data-rows');
s.onload=function(){all=window.MANTRA_ROWS[t.id];shown=all;var w=waiting;waiting=null;w.forEach(function(g){g();});};
s.onerror=function(){count.textContent='the rows file '+t.getAttribute('data-rows')+' could not be loaded';};
document.head.appendChild(s);}
function render(){var n=Math.max(1,Math.ceil(shown.length/size));if(page>=n)page=n-1;if(page<0)page=0;
body.innerHTML=shown.slice(page*size,(page+1)*size).map(function(r){return r.h;}).join('');
count.textContent=shown.length+' row(s)';if(pager)pager.querySelector('.info').textContent='page '+(page+1)+' of '+n;
t.setAttribute('data-renders',++renders);}
function refilter(){var q=filter.value.toLowerCase();
shown=q?all.filter(function(r){return r.n.indexOf(q)>=0;}):all;page=0;render();}
t.tHead.querySelectorAll('th[data-key]').forEach(function(th){th.addEventListener('click',function(){withRows(function(){
var j=parseInt(th.getAttribute('data-col'),10),dir=th.getAttribute('data-dir')==='asc'?'desc':'asc',s=dir==='asc'?1:-1;
t.tHead.querySelectorAll('th').forEach(function(o){o.removeAttribute('data-dir');});th.setAttribute('data-dir',dir);
all.sort(function(a,b){var x=a.k[j],y=b.k[j];if(x===null||y===null)return (x===null)-(y===null);
return x<y?-s:x>y?s:0;});refilter();});});});
filter.addEventListener('input',function(){withRows(refilter);});
if(pager)pager.querySelectorAll('button').forEach(function(b){b.addEventListener('click',function(){withRows(function(){
page+=parseInt(b.getAttribute('data-step'),10);render();});});});});})();
"""


def document(title: str, sections: Sequence[str], partial: str | None = None) -> str:
    """The whole page: ``sections`` (ready HTML) under a title; ``partial`` a warning shown first."""
    warn = f'<p class="partial"><strong>Partial results:</strong> {esc(partial)}</p>' if partial else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><h1>{esc(title)}</h1>{warn}"
            f"{''.join(sections)}<script>{JS}</script></body></html>\n")
