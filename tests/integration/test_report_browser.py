"""A report over a real smoke run renders in headless Chromium: no console error, tables and figures visible.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped cleanly without it. The page is
checked three ways: the browser's console log (``--enable-logging=stderr`` prints every console message,
Content-Security-Policy violations included, as ``:CONSOLE`` lines), the DOM after load (``--dump-dom``)
and a screenshot whose pixels must show the plot lines and the highlighted best values, which proves the
embedded SVG figures were decoded and the CSS applied.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from dlbench.report import build_report
from dlbench.report.plots import series_styles
from tests.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.browser]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0")
FRAMEWORKS = ("torch", "tensorflow", "jax")
BEST_CELL_RGB = (0xE2, 0xF4, 0xE4)  # td.best background in dlbench/report/html.py


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless chromium is not installed (apt-get install -y chromium)")


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6, minimum: int = 30) -> bool:
    diff = np.abs(pixels[..., :3].astype(int) - np.array(rgb)[None, None, :])
    return int((diff.max(axis=-1) <= tolerance).sum()) >= minimum


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    browser()
    installed = [f for f in FRAMEWORKS if importlib.util.find_spec(f) is not None]
    if not installed:
        pytest.skip("no real framework installed")
    root = tmp_path_factory.mktemp("browser")
    run = root / "run"
    proc = run_cli("run", "--suite", "smoke", "--framework", ",".join(installed), "--device", "cpu",
                   "--output", str(run), "--quiet", timeout=1800)
    # 1 = some case failed: the report must show that too, so it is not a reason to stop here
    assert proc.returncode in (0, 1) and (run / "run.json").is_file(), proc.stderr[-2000:]
    return build_report([run], root / "report")


def test_console_check_catches_errors(tmp_path: Path) -> None:
    """The detector itself: a page that breaks the policy and throws must produce console lines."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    proc = chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("undefinedFunction" in line for line in console_messages(proc.stderr)), proc.stderr[-2000:]


def test_report_renders_without_console_errors(smoke_report: Path, tmp_path: Path) -> None:
    proc = chromium(smoke_report, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    dom = proc.stdout
    figures = list((smoke_report.parent / "plots").glob("*.svg"))
    assert figures and len(re.findall(r'<img [^>]*src="data:image/svg\+xml;base64,', dom)) == len(figures)
    for title in ("Runs and environment", "lenet: time per batch", "alexnet: time per batch",
                  "autoencoder/pretrain1: time per batch", "autoencoder/finetune: time per batch",
                  "lstm: time per batch", "Cases that failed"):
        assert title in dom, title
    assert dom.count("<table") >= 2 * 7 + 2  # study + efficiency per workload phase, environment, failures


def test_report_screenshot_shows_tables_and_plots(smoke_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = chromium(smoke_report, tmp_path / "profile", "--window-size=1400,4200", f"--screenshot={shot}")
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = (image.imread(shot) * 255).astype(np.uint8)
    assert pixels.shape[0] == 4200 and pixels.std() > 20  # not a blank page
    assert has_colour(pixels, BEST_CELL_RGB)  # the study table with its highlighted best values
    # the first plot's series colours are drawn: the embedded SVG figures were decoded and shown
    with open(smoke_report.parent / "tables" / "results.csv", newline="") as handle:
        series = list(dict.fromkeys(f"{r['framework']} [{r['variant']}]" for r in csv.DictReader(handle)))
    colours = [hex_rgb(style.color) for style in series_styles(series).values()]
    assert any(has_colour(pixels, c, tolerance=10) for c in colours)
