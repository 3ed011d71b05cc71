"""Screenshots of the web page (the ones in docs/ui.md): the real service on a local socket, driven by
Playwright in headless Chromium.

    python scripts/ui_screenshots.py                       # writes to /tmp/agent-reasoning-screenshots
    python scripts/ui_screenshots.py --out docs/images     # refresh the images the docs show

Needs `pip install playwright` and a Chromium (Debian: `apt-get install chromium`; found on PATH or
given with --chromium); no browser download. Uses the models in --models (default: models/).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

REPO = Path(__file__).resolve().parents[1]
# a hard puzzle (17-25 givens) the shipped model solves in three steps, rewriting cells on the way
HARD_SUDOKU = "...3.81......2...3..26..8.997.........3.9..1..5..46......752...7......2...8.....6"


@contextlib.contextmanager
def serve(models: Path) -> Iterator[str]:
    """The real app under uvicorn on a free port; yields its URL once /readyz answers 200."""
    from reasoning_service.app import create_app
    from reasoning_service.settings import Settings

    app = create_app(Settings(models_dir=models, log_format="text", log_level="WARNING"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    while httpx.get(f"{url}/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the service did not become ready (models still loading after 300 s)")
        time.sleep(0.2)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/agent-reasoning-screenshots"), help="folder for the PNG files")
    parser.add_argument("--models", type=Path, default=REPO / "models", help="models directory the service loads")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"), help="Chromium executable")
    args = parser.parse_args(argv)
    if not args.chromium:
        print("no Chromium found: apt-get install chromium, or pass --chromium PATH", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with serve(args.models) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900}, color_scheme="light")
        page.goto(url)
        page.wait_for_selector("#task option[value=sudoku]", state="attached")

        def shot(name: str) -> None:
            page.wait_for_timeout(2500)  # the live panel polls every 2 s: show the state after the solve
            path = args.out / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            print(path)

        def solve(task: str, text: str | None = None) -> None:
            page.select_option("#task", task)
            if text is not None:
                page.fill("#problem", text)
            page.click("#solve")
            page.wait_for_selector("#result:not([hidden])")
            page.wait_for_selector("#solve:not([disabled])")  # a selector: the page's CSP forbids the eval wait_for_function needs

        # shown at step 2: the cells the second step rewrote are highlighted
        solve("sudoku", "\n".join(HARD_SUDOKU[i : i + 9] for i in range(0, 81, 9)))
        page.click("#next")
        shot("ui-sudoku")
        solve("placement")
        shot("ui-placement")
        solve("rootcause")
        shot("ui-rootcause")
        solve("upgrade")
        shot("ui-upgrade")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
