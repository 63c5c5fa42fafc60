"""The page frame shared by every dashboard page: document head, styles, header, and escaping helpers.

HTML is built with the standard library: every value that came from the store or the request goes
through :func:`esc`, and the only markup is written here and in ``pages.py``. Colours were picked for a
contrast of at least 4.5:1 on their background (WCAG AA); verdicts and expiry are also said in words, so
nothing is told by colour alone.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

__all__ = ["ago", "esc", "page", "when"]

STYLE = """
:root { color-scheme: light; --fg: #1b1f24; --muted: #4a5560; --line: #c9d1d9; --focus: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: #fff; }
a { color: #0b57d0; }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5em; }
.skip:focus { left: .5em; }
header { display: flex; gap: 1em; align-items: center; justify-content: space-between; padding: .6em 1.2em;
  background: #102a43; color: #fff; }
header h1 { font-size: 1.15em; margin: 0; }
header a, header button { color: #fff; }
nav ul { display: flex; gap: 1.2em; list-style: none; margin: 0; padding: 0; }
main { padding: 1em 1.2em 3em; max-width: 1400px; }
h2 { margin-top: 1.6em; border-bottom: 2px solid var(--line); padding-bottom: .2em; }
h3 { margin-bottom: .3em; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
caption { text-align: left; color: var(--muted); padding: .2em 0; }
th, td { border-bottom: 1px solid var(--line); padding: .35em .5em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
code { font-size: .92em; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: .05em .5em; border-radius: .3em; font-weight: 600; border: 1px solid; }
.LOCKED { background: #e6f4ea; color: #0b5d27; border-color: #0b5d27; }
.OPEN { background: #fde8e8; color: #9b1111; border-color: #9b1111; }
.MISCONFIGURED { background: #fff4e0; color: #7a4300; border-color: #7a4300; }
.UNREACHABLE, .UNCHECKED { background: #eef1f4; color: #3b4652; border-color: #3b4652; }
.failclosed { color: #9b1111; font-weight: 600; }
.settings { color: var(--muted); margin: 0 0 .4em; }
.tiles { display: flex; flex-wrap: wrap; gap: 1em; margin: .5em 0 1em; padding: 0; list-style: none; }
.tiles li { border: 1px solid var(--line); border-radius: .4em; padding: .5em .9em; min-width: 10em; }
.tiles .value { display: block; font-size: 1.5em; font-weight: 700; }
meter { width: 12em; }
form.inline { display: inline; }
button, input[type=submit] { font: inherit; padding: .35em .9em; border-radius: .3em; border: 1px solid #102a43;
  background: #102a43; color: #fff; cursor: pointer; }
header button { background: transparent; border-color: #fff; }
input[type=password] { font: inherit; padding: .4em; width: min(38em, 100%); border: 1px solid #4a5560;
  border-radius: .3em; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
header :focus-visible { outline-color: #ffd166; }
.error { color: #9b1111; font-weight: 600; }
.notice { border: 1px solid #0b5d27; background: #e6f4ea; color: #0b5d27; padding: .4em .7em; border-radius: .3em; }
.settings-form { margin: 0 0 .6em; }
select { font: inherit; padding: .2em; }
details summary { cursor: pointer; }
"""


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def when(moment: datetime | None) -> str:
    """A ``<time>`` element, UTC, to the minute."""
    if moment is None:
        return '<span class="muted">never</span>'
    utc = moment.astimezone(UTC)
    return f'<time datetime="{utc:%Y-%m-%dT%H:%M:%SZ}">{utc:%Y-%m-%d %H:%M} UTC</time>'


def ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)} s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def page(title: str, body: str, *, signed_in_as: str | None = None, script: str = "") -> str:
    """A complete HTML document."""
    header_right = ""
    if signed_in_as is not None:
        header_right = (
            f"<span>signed in with token <strong>{esc(signed_in_as)}</strong></span> "
            '<form class="inline" method="post" action="/dashboard/logout">'
            '<button type="submit">Sign out</button></form>'
        )
    script_tag = f'<script src="/dashboard/static/{esc(script)}" defer></script>' if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} - originlock</title><style>{STYLE}</style>{script_tag}</head><body>"
        '<a class="skip" href="#main">Skip to content</a>'
        f"<header><h1>originlock</h1><div>{header_right}</div></header>"
        f'<main id="main" tabindex="-1">{body}</main></body></html>'
    )
