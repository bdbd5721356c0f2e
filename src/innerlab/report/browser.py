"""Look at an HTML page as a person would: headless Chromium loads it, takes a screenshot and
reports what a reader would notice first: images that did not load, missing tables, and a page
wider than the window (a horizontal scroll bar).

    from innerlab.report.browser import check_page, find_chromium
    result = check_page("runs/x/report.html", "runs/x/report.png")
    assert not result["broken"] and result["scroll_width"] <= result["viewport"]

Only the standard library and a Chromium binary (Debian's `chromium` package; `make test`
installs it where it can) are needed: a copy of the page with a small script added is loaded
with `--dump-dom`; on `load` the script writes its measurements into the page as JSON, which is
read back from the dumped DOM. The screenshot is a separate `--screenshot` run of the original
page. Also a command: `python -m innerlab.report.browser PAGE.html SHOT.png` prints the result.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
"""Executables tried in order on PATH; INNERLAB_CHROMIUM, when set, is tried first."""

# Headless, and nothing that reaches the network or shows a first-run dialog: on a machine with
# a closed network Chromium's background connections otherwise fail many at a time. As root
# (CI, containers) Chromium refuses to start without --no-sandbox.
FLAGS = ("--headless", "--disable-gpu", "--no-sandbox", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--mute-audio")
MAX_SCREENSHOT_HEIGHT = 16_000
"""A full-page screenshot is cut at this many pixels (Chromium's own limit is near 16,384)."""
RESULT_ID = "innerlab-page-check"

# Runs in the page copy. `load` fires once every image has loaded or failed, so `complete` and
# `naturalWidth` are final then. Elements whose right edge passes the window, outside any box
# that scrolls, are listed (a few) so that a failure says what is too wide.
_PROBE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement, viewport = root.clientWidth, wide = [];
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !img.complete || img.naturalWidth === 0; })
                     .map(function (img) { return (img.getAttribute("src") || "").slice(0, 200); });
  function clipped(el) {  // inside a box that scrolls or clips, so it cannot widen the page
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  }
  document.querySelectorAll("body *").forEach(function (el) {
    if (wide.length < 10 && el.getBoundingClientRect().right > viewport + 0.5 && !clipped(el)) {
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""));
    }
  });
  var out = document.createElement("pre");
  out.id = "%(id)s";
  out.style.display = "none";
  out.textContent = JSON.stringify({
    images: images.length, broken: broken, tables: document.querySelectorAll("table").length,
    scroll_width: root.scrollWidth, viewport: viewport, scroll_height: root.scrollHeight, wide: wide});
  document.body.appendChild(out);
});
</script>""" % {"id": RESULT_ID}
_RESULT = re.compile(r'<pre id="%s"[^>]*>(.*?)</pre>' % RESULT_ID, re.S)


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None when there is none."""
    override = os.environ.get("INNERLAB_CHROMIUM")
    for name in ((override,) if override else ()) + CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(binary: str, profile: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def _with_probe(page: str, base: str | None = None) -> str:
    """The page with the probe script added at the end of its body (or of the text), and a
    <base href> first when the copy lies elsewhere than the original."""
    at = page.lower().rfind("</body>")
    page = page + _PROBE if at < 0 else page[:at] + _PROBE + page[at:]
    if base is None:
        return page
    tag = f'<base href="{html.escape(base)}">'
    head = re.search(r"<head[^>]*>", page, re.I)
    return page[:head.end()] + tag + page[head.end():] if head else tag + page


def _write_probe_copy(page_path: Path, page: str, fallback_dir: str) -> str:
    """Write the probed copy next to the page, so relative paths resolve as they do for the
    page itself; where that folder is read-only, into `fallback_dir` with a <base href>."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{page_path.stem}.check-", suffix=".html", dir=page_path.parent)
        text = _with_probe(page)
    except OSError:
        fd, name = tempfile.mkstemp(suffix=".html", dir=fallback_dir)
        text = _with_probe(page, base=page_path.parent.as_uri() + "/")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return name


def check_page(html_path, screenshot_path, width: int = 1280, *, height: int | None = None,
               chromium: str | None = None, timeout: float = 60.0) -> dict:
    """Load `html_path` in headless Chromium in a window `width` px wide; save a PNG screenshot
    of the page (its full height up to MAX_SCREENSHOT_HEIGHT, or `height` px) and return

        images: number of <img> elements;  broken: the src of each that did not load;
        tables: number of <table> elements;
        scroll_width, viewport: the document's width and the window's (scroll_width > viewport
            means a horizontal scroll bar);  scroll_height: the document's height;
        wide: up to 10 elements, outside any scrolling box, whose right edge passes the window;
        screenshot: its path.

    Relative figure paths resolve as for the original page: the probed copy is written next to
    it (and removed), or where that folder is read-only, elsewhere with a <base href>.
    Raises FileNotFoundError without Chromium, RuntimeError when Chromium fails or the page
    never finishes loading within `timeout` seconds.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (install Debian's `chromium`, or set INNERLAB_CHROMIUM)")
    page_path = Path(html_path).resolve()
    screenshot_path = Path(screenshot_path).resolve()
    screenshot_path.parent.mkdir(parents=True, exist_ok=True)
    page = page_path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="innerlab-chromium-") as profile:
        probe_name = _write_probe_copy(page_path, page, profile)
        try:
            # The virtual-time budget lets the page's timers and loads finish before the dump
            # without waiting in real time.
            proc = _chromium(binary, profile, [f"--window-size={width},900", "--virtual-time-budget=10000",
                                               "--dump-dom", Path(probe_name).as_uri()], timeout)
        finally:
            os.unlink(probe_name)
        found = _RESULT.search(proc.stdout)
        if not found:
            raise RuntimeError(f"the page check did not run (no load event?): {proc.stderr.strip()[-2000:]}")
        result = json.loads(html.unescape(found.group(1)))
        shot_height = height or min(max(int(result["scroll_height"]), 1), MAX_SCREENSHOT_HEIGHT)
        if screenshot_path.exists():
            screenshot_path.unlink()  # so a stale file cannot pass for this run's screenshot
        _chromium(binary, profile, [f"--window-size={width},{shot_height}", "--virtual-time-budget=10000",
                                    f"--screenshot={screenshot_path}", page_path.as_uri()], timeout)
    if not screenshot_path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {screenshot_path}")
    result["screenshot"] = str(screenshot_path)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m innerlab.report.browser PAGE.html SHOT.png [WIDTH]", file=sys.stderr)
        return 2
    result = check_page(args[0], args[1], int(args[2]) if len(args) == 3 else 1280)
    print(json.dumps(result, indent=1))
    ok = not result["broken"] and result["scroll_width"] <= result["viewport"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
