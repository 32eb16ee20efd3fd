"""The page's HTML pieces (escaped text, number formats, tables, warnings, collapsible details) and
its inline CSS, self-check script and content-security policy.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

__all__ = ["CSP", "CSS", "SELFCHECK_JS", "Raw", "details", "esc", "fmt", "fmt_err", "kv_table", "not_run", "table", "warning"]


# ====================================================================== HTML pieces
class Raw(str):
    """Text that is already HTML (not escaped again by the functions below)."""


def esc(value: Any) -> Raw:
    """HTML-escape ``value`` (as text) unless it is :class:`Raw` already."""
    if isinstance(value, Raw):
        return value
    return Raw(html.escape(str(value), quote=True))


def fmt(value: Any, spec: str = ".4g") -> str:
    """A number for a table: ``n/a`` for None/NaN, integers with thin grouping."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, spec) for v in value) if value else "none"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return format(value, spec)
    return str(value)


def fmt_err(value: Any, err: Any, spec: str = ".4g") -> str:
    """``value ± err`` (err omitted when unknown)."""
    text = fmt(value, spec)
    if _is_number(err):
        text += f" ± {fmt(float(err), '.2g')}"
    return text


def _is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def dict_at(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` when it is a dict, else an empty one (a partial or hand-written artifact)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], cls: str = "") -> Raw:
    """An HTML table in a box that scrolls sideways (a table too wide for its column scrolls
    there, never under its neighbour); cells escaped unless :class:`Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{esc(cls)}"' if cls else ""
    return Raw(
        f'<div class="tbl"><table{attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def kv_table(items: Iterable[tuple[Any, Any]]) -> Raw:
    """A two-column key/value table, in the same box as :func:`table`."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items)
    return Raw(f'<div class="tbl"><table class="kv"><tbody>{rows}</tbody></table></div>')


def warning(text: str) -> Raw:
    """A visible warning box."""
    return Raw(f'<p class="warn">⚠ {esc(text)}</p>')


def not_run(what: str) -> Raw:
    """The "not run" note of a section whose artifacts are missing."""
    return Raw(f'<p class="notrun">not run: {esc(what)}</p>')


def details(summary: str, body: str, *, open_: bool = False) -> Raw:
    """A collapsible block."""
    attr = " open" if open_ else ""
    return Raw(f"<details{attr}><summary>{esc(summary)}</summary>{body}</details>")


def _flags_text(f: Any) -> str:
    return ", ".join(str(x) for x in f) if isinstance(f, list) and f else "—"


# =========================================================================== page
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:1em 2em 3em}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ccd;padding-bottom:.2em;margin-top:2em}
section{margin-bottom:1.5em}
.tbl{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em;background:#fff}
th,td{border:1px solid #d5d8de;padding:.25em .6em;text-align:left;vertical-align:top}
thead th{background:#eef0f4}table.kv th{background:#f4f5f8;font-weight:600;max-width:22em}table.kv td{overflow-wrap:anywhere}
table.num td{font-variant-numeric:tabular-nums}
pre{background:#f1f2f5;padding:.6em;overflow-x:auto;font-size:.85em}
pre.config{max-height:40em}
figure{margin:1em 0;display:inline-block;max-width:100%;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
figcaption{font-size:.88em;color:#444}
.notrun{color:#777;font-style:italic}.warn{background:#fff4d6;border-left:4px solid #e0a800;
padding:.4em .7em}.note{font-size:.9em;color:#444}.summary{font-weight:600}
.pass{color:#11772a;font-weight:600}.fail{color:#b3261e;font-weight:600}.na{color:#777}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em}
nav li a{display:inline-block;padding:.15em .6em;border-radius:1em;background:#e6e9f0;
text-decoration:none;color:#1b1b1b;font-size:.9em}
nav li a.notrun{background:#f1f1f1;color:#888}nav li a.warn{background:#fff0c2;border:0}
details{margin:.5em 0}summary{cursor:pointer;color:#234}
footer{color:#666;font-size:.85em;border-top:1px solid #ddd;margin-top:3em;padding-top:1em}
#gammastar-selfcheck{font-size:.8em;white-space:pre-wrap}
#summary p.summary{font-size:1.05em}.missing{background:#f4f5f8;border-left:4px solid #99a;
padding:.2em .8em;margin:.6em 0}.missing ul,ul.warnings{margin:.3em 0}
ul.warnings li{background:#fff4d6;border-left:4px solid #e0a800;padding:.2em .6em;margin:.2em 0;
list-style:none}ul.warnings{padding-left:0}
.summary-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,540px);gap:1.2em;
align-items:start}.summary-grid .figures.top figure{margin-top:.4em}
@media (max-width:1100px){.summary-grid{grid-template-columns:minmax(0,1fr)}}
#summary table{font-size:.86em}#summary table.num td{white-space:nowrap}#summary h3{margin:.7em 0 .3em}
table.masses td:first-child{font-weight:600;background:#f4f5f8;white-space:normal}
"""

# Runs in <head>: records script errors from the start; on load counts the images that
# decoded (complete && naturalWidth > 0), measures the layout at the window's width (every
# table, those in closed <details> opened for the measurement, against the box it sits in, and
# against every figure) and writes the result for the browser test.
SELFCHECK_JS = """
(function () {
  var errors = [], loaded = false;
  function all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }
  function name(t) {
    var s = t.closest("section"), h = t.querySelector("th");
    return (s ? s.id : "page") + ": " + (h ? h.textContent.trim() : "table");
  }
  function layout() {
    var closed = all("details").filter(function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
    var boxes = all("figure").map(function (f) { return f.getBoundingClientRect(); });
    var wide = [], overlaps = [];
    all("table").forEach(function (t) {
      var width = Math.max(t.scrollWidth, t.offsetWidth), room = t.parentElement.clientWidth;
      if (width > room) { wide.push(name(t) + " (" + width + " px in " + room + " px)"); }
      var r = t.getBoundingClientRect();
      boxes.forEach(function (q) {
        if (r.left < q.right && q.left < r.right && r.top < q.bottom && q.top < r.bottom) {
          overlaps.push(name(t));
        }
      });
    });
    var root = document.documentElement, out = {
      viewport: root.clientWidth, page_width: root.scrollWidth,
      tables: all("table").length, wide: wide, overlaps: overlaps
    };
    closed.forEach(function (d) { d.open = false; });
    return out;
  }
  function write() {
    if (!loaded) { return; }
    var imgs = Array.prototype.slice.call(document.images);
    var ok = function (im) { return im.complete && im.naturalWidth > 0; };
    var src = function (im) {
      var s = im.getAttribute("src") || "";
      return s.slice(0, 5) === "data:" ? s.slice(0, 22) + "..." : s;
    };
    var out = {
      images: imgs.length,
      loaded: imgs.filter(ok).length,
      errors: errors,
      broken: imgs.filter(function (im) { return !ok(im); }).map(src),
      layout: layout()
    };
    var el = document.getElementById("gammastar-selfcheck");
    if (el) { el.textContent = JSON.stringify(out); }
  }
  window.onerror = function (msg, src, line, col) {
    errors.push(String(msg) + (src ? " (" + src + ":" + line + ":" + col + ")" : ""));
    write();
    return false;
  };
  document.addEventListener("securitypolicyviolation", function (e) {
    errors.push("blocked by the Content-Security-Policy: " + e.blockedURI);
    write();
  });
  window.addEventListener("load", function () { loaded = true; write(); });
})();
"""

# No network and no file beside the page: everything inline, images as data: URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
