"""The web page at GET /, in a real browser: Playwright driving headless Chromium (the system's
package, by its path) against the real service on a real socket; and GET /v1/stats, which feeds
the page's live panel.

The browser tests skip with a reason where Playwright or Chromium is missing, except under CI=true
(CI installs both: .ci/run), where they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from reasoning_service.routes.stats import RateWindow

from .conftest import SUDOKU_EASY, needs_sudoku, settings_for
from .server import running_server

CHROMIUM = os.environ.get("REASONING_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 120_000  # a solve on a busy 2-core CPU


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not CHROMIUM:
        return "no Chromium on PATH (apt-get install chromium; or set REASONING_TEST_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing_browser()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI installs the browser for these tests: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = context.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def solver_only_dir(tmp_path_factory):
    """A models directory with no model: every task is answered by its solver (loads at once)."""
    return tmp_path_factory.mktemp("no-models")


def open_page(page, url: str) -> list[str]:
    """Load the page; returns the list that collects every URL the page requests from then on."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(url)
    page.wait_for_selector("#task option", state="attached")
    return requested


def solve(page, task: str, *, text: str | None = None, min_steps: int | None = None) -> dict:
    """Pick the task, optionally type the problem, press Solve; returns the /v1/reason JSON it got."""
    from playwright.sync_api import expect

    page.select_option("#task", task)
    if text is not None:
        page.fill("#problem", text)
    page.fill("#min-steps", "" if min_steps is None else str(min_steps))
    with page.expect_response(lambda r: r.url.endswith("/v1/reason")) as response:
        page.click("#solve")
    # Playwright's string predicates run through eval, which the page's CSP (rightly) forbids once
    # polling starts; its own assertions wait without eval
    expect(page.locator("#solve")).to_be_enabled()
    return response.value.json()


# ---------------------------------------------------------------------------------- no browser


def test_page_and_its_files_are_public_and_hold_no_data(solver_only_dir):
    with running_server(settings_for(solver_only_dir, api_token="s3cret")) as url:
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # only its own origin: works offline, and nothing on the page can send data elsewhere
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.replace('href="/docs"', "")  # no CDN, no absolute URL
        for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
            r = httpx.get(f"{url}/ui/{name}")
            assert r.status_code == 200 and kind in r.headers["content-type"], name
        # the data stays behind the token
        assert httpx.get(f"{url}/v1/tasks").status_code == 401
        assert httpx.get(f"{url}/v1/stats").status_code == 401


def test_ui_can_be_turned_off(solver_only_dir):
    with running_server(settings_for(solver_only_dir, ui_enabled=False)) as url:
        assert httpx.get(f"{url}/").status_code == 404
        assert httpx.get(f"{url}/ui/app.js").status_code == 404
        assert httpx.get(f"{url}/v1/tasks").status_code == 200  # the API is unaffected


def test_rate_window_covers_the_last_seconds():
    w = RateWindow(window=10)
    assert w.rate(100.0, 0) == (None, 0.0)  # one sample: no rate yet
    assert w.rate(102.0, 4) == (2.0, 2.0)
    w.rate(108.0, 10)
    rate, span = w.rate(115.0, 24)  # 100 falls out: 102 is the newest sample at least 10 s old
    assert span == 13.0 and rate == pytest.approx(20 / 13)
    rate, span = w.rate(130.0, 24)  # nothing for 15 s: the base moves up to 115
    assert (rate, span) == (0.0, 15.0)


@needs_sudoku
def test_stats_count_requests_and_show_busy_slots(server):
    before = httpx.get(f"{server}/v1/stats").json()
    assert {m["name"] for m in before["models"]} >= {"sudoku"}
    for m in before["models"]:
        assert 0 <= m["busy_slots"] <= m["slots"] and m["queue_depth"] >= 0
    # a long request (all 16 steps of a hard puzzle, no halting) holds a sudoku slot while we look
    hard = "...3.81......2...3..26..8.997.........3.9..1..5..46......752...7......2...8.....6"
    done = threading.Event()

    def long_request() -> None:
        try:
            httpx.post(f"{server}/v1/reason", json={"task": "sudoku", "problem": {"puzzle": hard}, "min_steps": 16}, timeout=120)
        finally:
            done.set()

    threading.Thread(target=long_request, daemon=True).start()
    busy_seen = 0
    while not done.is_set():
        sudoku = next(m for m in httpx.get(f"{server}/v1/stats").json()["models"] if m["name"] == "sudoku")
        busy_seen = max(busy_seen, sudoku["busy_slots"])
        time.sleep(0.01)
    assert busy_seen >= 1
    for _ in range(3):
        assert httpx.post(f"{server}/v1/reason", json={"task": "sudoku", "problem": {"puzzle": SUDOKU_EASY}}, timeout=60).status_code == 200
    after = httpx.get(f"{server}/v1/stats").json()
    # the counter counts every request of every client (the other tests share this server), so at least ours
    assert after["requests_total"] >= before["requests_total"] + 4
    assert after["requests_per_second"] > 0 and after["rate_seconds"] > 0


# ------------------------------------------------------------------------------------- browser


@needs_sudoku
def test_solve_the_example_sudoku_and_step_through_every_step(page, server):
    requested = open_page(page, server)
    page.select_option("#task", "sudoku")
    page.fill("#problem", "")
    page.click("#load-example")
    example = next(t["example"]["puzzle"] for t in httpx.get(f"{server}/v1/tasks").json()["tasks"] if t["name"] == "sudoku")
    assert example == SUDOKU_EASY
    assert page.input_value("#problem") == "\n".join(SUDOKU_EASY[i : i + 9] for i in range(0, 81, 9))
    response = solve(page, "sudoku", min_steps=3)  # the example halts at once; 3 steps to step through
    trace = response["reasoning_trace"]
    assert len(trace) >= 3 and response["solved_by"] == "trm" and response["verified"] is True
    summary = page.inner_text("#summary")
    assert "trm" in summary and "verified" in summary and response["model"]["name"] in summary
    assert page.locator("#curve circle").count() == len(trace)

    previous = SUDOKU_EASY
    for i, step in enumerate(trace):
        if i:
            page.click("#next")
        assert page.inner_text("#step-label").startswith(f"step {step['step']} of {len(trace)}")
        digits = step["solution"]["solution"]
        cells = page.locator("#view .cell")
        assert "".join(cells.all_inner_texts()) == digits.replace("0", "")
        # highlighted: the blanks this step wrote differently from the step before (step 1: all it wrote)
        expected = sum(1 for k in range(81) if SUDOKU_EASY[k] == "." and digits[k] != previous[k])
        assert page.locator("#view .cell.changed").count() == expected
        assert f"{expected} changed" in page.inner_text("#step-label")
        assert page.locator("#view .cell.given").count() == 81 - SUDOKU_EASY.count(".")
        assert page.locator("#curve circle.current").count() == 1
        assert page.locator("#curve circle").nth(i).get_attribute("class") == "dot current"
        previous = digits
    assert page.is_disabled("#next")
    assert page.locator("#view .cell").count() == 81
    # the page fetched nothing from anywhere but the service
    assert requested and all(u.startswith(server) for u in requested), requested


@needs_sudoku
def test_a_bad_puzzle_shows_the_services_error(page, server):
    open_page(page, server)
    bad = "55" + SUDOKU_EASY[2:]  # two 5s in row 1
    solve(page, "sudoku", text=bad)
    error = page.locator("#error")
    assert error.is_visible()
    assert "contradictory givens" in error.inner_text() and "problem.puzzle" in error.inner_text()
    assert page.is_hidden("#result")
    solve(page, "sudoku", text="123")
    assert "81 cells" in page.inner_text("#error")


def test_solver_answers_show_bins_graph_and_waves_without_steps(page, solver_only_dir):
    with running_server(settings_for(solver_only_dir)) as url:
        open_page(page, url)
        tasks = httpx.get(f"{url}/v1/tasks").json()["tasks"]
        example = {t["name"]: t["example"] for t in tasks}

        r = solve(page, "placement")
        assert r["model"] is None and not r["reasoning_trace"]
        assert page.is_visible("#no-steps") and "No supervision steps" in page.inner_text("#no-steps")
        assert page.is_hidden("#stepper") and page.is_hidden("#curve-box")
        assert page.locator("#view .bin").count() == len(example["placement"]["nodes"])
        for pod, node in r["solution"]["assignments"].items():
            assert pod in page.locator("#view .bin", has=page.locator("h4", has_text=node)).inner_text()

        # a typed table: two nodes, three pods; the anti-affinity group keeps the two web pods apart
        typed = "nodes:\nn1 1000 1024\nn2 1000 1024\npods:\nweb-0 400 256 web\nweb-1 400 256 web\ndb-0 500 512\n"
        r = solve(page, "placement", text=typed)
        assert r["verified"] is True and r["solution"]["assignments"]["web-0"] != r["solution"]["assignments"]["web-1"]
        assert page.locator("#view .bin").count() == 2 and page.locator("#view .pod").count() == 3

        r = solve(page, "maze")  # no model in this directory: BFS answers
        assert r["solved_by"] != "trm" and page.locator("#view .cell").count() == sum(len(row) for row in example["maze"]["grid"])
        assert page.locator("#view .cell.path").count() == len(r["solution"]["path"])

        r = solve(page, "rootcause")
        assert page.locator("#view g.service").count() == len(example["rootcause"]["services"])
        assert page.locator("#view line.edge").count() == len(example["rootcause"]["dependencies"])
        top = r["solution"]["ranking"][0]
        assert page.locator("#view g.service.rank-0").text_content().startswith(top)

        r = solve(page, "upgrade")
        waves = page.locator("#view .wave")
        assert waves.count() == len(r["solution"]["waves"])
        for i, wave in enumerate(r["solution"]["waves"]):
            assert waves.nth(i).locator("li").count() == len(wave)
            for node in wave:
                assert node in waves.nth(i).inner_text()

        # the JSON tab holds the same problem the table showed
        page.click(".tab[data-format=json]")
        assert json.loads(page.input_value("#problem")) == example["upgrade"]
        page.click(".tab[data-format=text]")
        assert page.input_value("#problem").startswith("nodes: " + example["upgrade"]["nodes"][0])


def test_the_page_asks_for_the_token_and_sends_it(page, solver_only_dir):
    with running_server(settings_for(solver_only_dir, api_token="s3cret")) as url:
        sent: list[str | None] = []
        page.on("request", lambda r: sent.append(r.headers.get("authorization")) if "/v1/" in r.url else None)
        page.goto(url)
        page.wait_for_selector("#auth:not([hidden])")
        assert "token" in page.inner_text("#error")
        page.fill("#token", "s3cret")
        page.click("#auth button")
        page.wait_for_selector("#task option[value=upgrade]", state="attached")
        r = solve(page, "upgrade")
        assert r["verified"] is True and page.locator("#view .wave").count() == len(r["solution"]["waves"])
        assert page.is_hidden("#auth")
        assert "Bearer s3cret" in sent and sent[-1] == "Bearer s3cret"


@needs_sudoku
def test_the_live_panel_shows_each_models_slots(page, server):
    from playwright.sync_api import expect

    open_page(page, server)
    models = httpx.get(f"{server}/v1/stats").json()["models"]
    page.wait_for_selector(f"#live-models li[data-model='{models[0]['name']}']")
    for m in models:
        assert f"/{m['slots']} busy" in page.inner_text(f"#live-models li[data-model='{m['name']}']")
    expect(page.locator("#live-rps")).not_to_have_text("–", timeout=10_000)  # second poll: a rate
    float(page.inner_text("#live-rps"))


def test_the_screenshot_script_of_docs_ui_runs(tmp_path):
    # `make screenshots` (docs/ui.md): the real page with the shipped models; a wait_for_function the
    # page's CSP forbids once broke it unnoticed
    missing = _missing_browser()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI installs the browser for these tests: {missing}")
        pytest.skip(missing)
    script = Path(__file__).resolve().parents[2] / "scripts" / "ui_screenshots.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--chromium", CHROMIUM], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["ui-placement.png", "ui-rootcause.png", "ui-sudoku.png", "ui-upgrade.png"]
