"""The report in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`, driven
with selenium) opens it from disk, sorts the leaderboard, filters and sorts the gallery, plays a
video and takes a screenshot, with no console error. `.ci/run` installs Chromium; without it
the test is skipped and says why."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from synthetic_runs import make_run

from kaleido_bench.bench.report import build_report
from kaleido_bench.bench.store import ScoreRecord

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
CASES = (
    "singleface_astronaut",
    "singleobj_cat",
    "singleobj_coffee",
    "multiobject_cat_coffee",
    "bgobj_cat_grass",
)
# the gallery lists every case of the suite (mini's order), also those the runs did not make
MINI = (
    "singleface_astronaut",
    "singleface_hopper",
    "singleobj_cat",
    "singleobj_coffee",
    "singleobj_gift",
    "multiface_astronaut_hopper",
    "multiobject_cat_coffee",
    "faceobj_astronaut_rocket",
    "bgobj_cat_grass",
    "bgobj_horse_garage",
)


def needs_chromium() -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "headless Chromium not installed (apt-get install chromium chromium-driver; .ci/run does it)"
        )


def chromium(profile: Path):
    needs_chromium()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium not installed (pip install selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def wait_for(predicate, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the page")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    needs_chromium()  # before building anything
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for m, name in enumerate(("alpha", "beta")):
        records = [
            ScoreRecord(case, "motion_amplitude", 0.1 * (i + 1) if m == 0 else 0.9 - 0.1 * i)
            for i, case in enumerate(CASES)
        ]
        records.append(
            ScoreRecord("singleobj_cat", "face_sim_dlib", None, {"absent": "not a face case"})
        )
        runs.append(make_run(root, name, records, model=name, videos=CASES))
    return build_report(runs, tmp_path_factory.mktemp("report") / "out", videos="copy", reps=100)


def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = chromium(Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        driver.get(report.as_uri())
        table = driver.find_element(By.ID, "board-mini")

        def models() -> list[str]:
            return [
                row.find_elements(By.TAG_NAME, "td")[0].text.rstrip("*")
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
            ]

        assert models() == ["alpha", "beta"]
        header = next(
            th
            for th in table.find_elements(By.CSS_SELECTOR, "thead th")
            if th.text.startswith("motion_amplitude")
        )
        header.click()  # highest first: beta's mean 0.7 beats alpha's 0.3
        assert models() == ["beta", "alpha"] and header.get_attribute("aria-sort") == "descending"
        header.click()
        assert models() == ["alpha", "beta"]

        driver.get(report.parent.joinpath("gallery-mini.html").as_uri())

        def rows() -> list[str]:
            return [
                r.get_attribute("data-case")
                for r in driver.find_elements(By.CSS_SELECTOR, "#gallery-rows tr")
            ]

        assert rows() == list(MINI)
        Select(driver.find_element(By.ID, "filter-category")).select_by_value("singleobj")
        assert rows() == ["singleobj_cat", "singleobj_coffee", "singleobj_gift"]
        assert driver.find_element(By.ID, "gallery-count").text == "3 of 10 cases"
        Select(driver.find_element(By.ID, "filter-category")).select_by_value("")
        Select(driver.find_element(By.ID, "sort-metric")).select_by_value("motion_amplitude")
        Select(driver.find_element(By.ID, "sort-model")).select_by_value(
            "0"
        )  # alpha's values, high first
        assert rows() == [
            *reversed(CASES),
            *(case for case in MINI if case not in CASES),
        ]  # no value: last
        driver.find_element(By.ID, "filter-search").send_keys("coffee")
        assert rows() == ["multiobject_cat_coffee", "singleobj_coffee"]
        toggle = driver.find_elements(By.CSS_SELECTOR, "input.model-toggle")[1]
        toggle.click()  # hide beta's column
        assert [
            td.is_displayed()
            for td in driver.find_elements(By.CSS_SELECTOR, "#gallery-rows tr:first-child td")
        ] == [True, True, False]

        driver.find_element(By.CSS_SELECTOR, "#gallery-rows tr:first-child button.poster").click()
        state = wait_for(
            lambda: driver.execute_script(
                "var v = document.querySelector('video.clip');"
                "return v && v.readyState >= 2 && v.currentTime > 0 && !v.error ? [v.currentTime, v.src] : null;"
            )
        )
        assert state[1].endswith("media/videos/0-alpha/multiobject_cat_coffee.mp4")

        shot = tmp_path / "gallery.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()
