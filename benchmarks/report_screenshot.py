"""Screenshots of a report folder in headless Chromium, for the README.

    python benchmarks/report_screenshot.py results/mini/report --out results/mini

writes `report_index.png` (leaderboard and charts) and `report_gallery.png` (the gallery with
the first video of the first case playing) into `--out`. Needs Debian's `chromium` and
`chromium-driver` and `pip install selenium` (the `dev` extra); the same flags as
tests/bench/test_report_browser.py, and a fresh profile folder every time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def driver(profile: str, width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report", type=Path, help="report folder (holds index.html)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        browser = driver(profile, args.width, args.height)
        try:
            browser.get((args.report / "index.html").resolve().as_uri())
            time.sleep(1.0)
            browser.save_screenshot(str(args.out / "report_index.png"))
            gallery = sorted(args.report.glob("gallery-*.html"))[0]
            browser.get(gallery.resolve().as_uri())
            time.sleep(1.0)
            browser.find_element(
                By.CSS_SELECTOR, "#gallery-rows tr:first-child button.poster"
            ).click()
            time.sleep(1.5)
            browser.save_screenshot(str(args.out / "report_gallery.png"))
            errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        finally:
            browser.quit()
    for name in ("report_index.png", "report_gallery.png"):
        print(f"wrote {args.out / name}")
    if errors:
        raise SystemExit(f"console errors: {errors}")


if __name__ == "__main__":
    main()
