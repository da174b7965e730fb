"""Open a report in headless Chromium and say what a reader would see.

A copy of the page gets a small script that runs after the page has loaded and writes its
findings into the DOM, which ``chromium --dump-dom`` then prints: every section heading,
how many images decoded and how many did not, and any resource fetched from outside the page
(a self-contained report fetches nothing).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")

PROBE = """
<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const external = performance.getEntriesByType("resource").map(r => r.name)
    .filter(u => !u.startsWith("data:"));
  const out = {
    sections: [...document.querySelectorAll("h2")].map(h => h.textContent.trim()),
    title: document.title,
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    external: external,
  };
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def find_chromium() -> str | None:
    """Path of an installed Chromium or Chrome, or None."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def render(html: Path, workdir: Path, chromium: str) -> dict:
    """Load ``html`` (with the probe) in headless Chromium; the probe's findings, plus a
    screenshot path under ``workdir``."""
    html, workdir = html.resolve(), workdir.resolve()
    page = workdir / "probed.html"
    text = html.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
              "--no-first-run", f"--user-data-dir={workdir / 'profile'}",
              "--virtual-time-budget=10000"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=False)
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
    if match is None:
        raise AssertionError(f"the page did not finish loading in Chromium: {dom.stderr[-800:]}")
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")
                        .replace("&lt;", "<").replace("&gt;", ">"))
    shot = workdir / "screenshot.png"
    subprocess.run([*common, "--window-size=1200,2400", f"--screenshot={shot}", html.as_uri()],
                   capture_output=True, timeout=120, check=False)
    result["screenshot"] = str(shot) if shot.is_file() else None
    return result
