"""Real users' paths in a real browser: the explorer in JupyterLab, and the lecture slides.

Starts `jupyter lab` from the project's environment on a free port with a random token,
opens notebooks/explorer.ipynb, picks the `gradreg` kernel if asked, runs all cells from
the Run menu, waits for the widget, moves the spectral-radius slider with the keyboard and
checks that the plot changed and that no cell shows a traceback. Screenshots go to
build/explorer.png (the widget) and build/explorer_lab.png (the whole page).

The slides test builds the reveal.js slides of notebooks 01-03 (smoke profile, reveal.js and
MathJax from npm, cached in build/.npm-vendor) and opens each deck offline
(screenshots: build/slides_01.png ...).

Needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`; Playwright's own
browser download is not used). Deselect with `-m "not slow"` or `-k "not browser"`.
"""
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK = NOTEBOOK_DIR / "explorer.ipynb"
BUILD = ROOT / "build"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
STDERR_OUTPUT = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
DEADLINE_S = 170  # the whole test; normally well under two minutes

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter() -> Path:
    venv = ROOT / ".venv" / "bin" / "jupyter"
    return venv if venv.exists() else Path(sys.executable).parent / "jupyter"


def _lab_settings(root: Path) -> Path:
    """User settings for this server only: no autosave (the committed notebook must stay
    without outputs), no news or update checks (no network)."""
    settings = root / "settings"
    for plugin, values in {
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return settings


def _kernel_env(root: Path, env: dict) -> dict:
    """Make the `gradreg` kernel available (the Makefile installs it into .venv); if it is
    missing, a temporary spec that runs this interpreter stands in for it."""
    from jupyter_client.kernelspec import KernelSpecManager
    if "gradreg" not in KernelSpecManager().find_kernel_specs():
        spec = root / "data" / "kernels" / "gradreg"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "gradreg (.venv)", "language": "python"}))
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root / "data"), env.get("JUPYTER_PATH")]))
    return env


def _wait_for_server(proc, url: str, log: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"jupyter lab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop_server(proc, base: str, token: str) -> None:
    if proc.poll() is None:
        try:  # the server shuts its kernels down, then exits
            req = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=5).close()
            proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:  # anything left in the server's own process group (kernels): it was started here
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)


def test_explorer_in_jupyterlab_with_chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install Debian's Chromium with "
                    "`apt-get update && apt-get install -y chromium` to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (Python client)")
    start = time.monotonic()
    original = NOTEBOOK.read_bytes()
    had_checkpoint = (NOTEBOOK_DIR / ".ipynb_checkpoints" / "explorer-checkpoint.ipynb").exists()
    root = Path(tempfile.mkdtemp(prefix="gradreg-browser-"))
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    env = _kernel_env(root, dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"),
                                 JUPYTER_RUNTIME_DIR=str(root / "runtime"), PYTHONUNBUFFERED="1"))
    log = root / "lab.log"
    cmd = [str(_jupyter()), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--notebook-dir={NOTEBOOK_DIR}",
           f"--LabApp.user_settings_dir={_lab_settings(root)}",
           f"--LabApp.workspaces_dir={root / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI containers run as root; jupyter refuses that without the flag
        cmd.append("--allow-root")
    BUILD.mkdir(exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
    try:
        _wait_for_server(proc, f"{base}/api/status?token={token}", log, timeout=60)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1700, "height": 1150})
                _user_path(page, f"{base}/lab/tree/explorer.ipynb?token={token}", start)
            finally:
                browser.close()
    finally:
        _stop_server(proc, base, token)
        if NOTEBOOK.read_bytes() != original:  # never leave outputs in the committed notebook
            NOTEBOOK.write_bytes(original)
            pytest.fail("JupyterLab saved notebooks/explorer.ipynb during the test (restored)")
        checkpoint = NOTEBOOK_DIR / ".ipynb_checkpoints" / "explorer-checkpoint.ipynb"
        if checkpoint.exists() and not had_checkpoint:  # opening the notebook made one
            checkpoint.unlink()
            with contextlib.suppress(OSError):
                checkpoint.parent.rmdir()               # only if nothing else is in it
        shutil.rmtree(root, ignore_errors=True)
    assert time.monotonic() - start < DEADLINE_S


def _left(start: float) -> float:
    """Milliseconds left until the test's deadline (Playwright timeouts)."""
    return max(1000.0, (DEADLINE_S - (time.monotonic() - start)) * 1000)


def _user_path(page, url: str, start: float) -> None:
    page.goto(url, timeout=_left(start))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=_left(start))

    # a "Select Kernel" dialog appears only when the notebook's kernel is not found
    try:
        dialog = page.wait_for_selector(".jp-Dialog", timeout=3000)
    except Exception:
        dialog = None
    if dialog is not None:
        select = page.locator(".jp-Dialog select")
        if select.count():
            select.select_option(label="gradreg (.venv)")
        page.locator(".jp-Dialog .jp-mod-accept").click()

    # Run > Run All Cells, as a user would
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()

    plot = page.locator("img.gradreg-explorer-plot")
    plot.wait_for(state="visible", timeout=_left(start))
    page.wait_for_function(
        "() => { const i = document.querySelector('img.gradreg-explorer-plot');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=_left(start))
    # the last cell prints the update latency once everything has run
    page.get_by_text("updates: median").wait_for(timeout=_left(start))
    _assert_no_traceback(page)

    plot.scroll_into_view_if_needed()
    src0, png0 = plot.get_attribute("src"), plot.screenshot()

    # move the spectral-radius slider with the keyboard: focus its handle, press the arrow key
    handle = page.locator(".gradreg-spectral-radius .noUi-handle")
    readout = page.locator(".gradreg-spectral-radius .widget-readout")
    value0 = readout.inner_text()
    handle.focus()
    pressed = time.monotonic()
    page.keyboard.press("ArrowRight")  # one step: 0.95 -> 1.00, one update
    page.wait_for_function(
        "(src) => { const i = document.querySelector('img.gradreg-explorer-plot');"
        " return i && i.src !== src && i.complete && i.naturalWidth > 0; }",
        arg=src0, timeout=_left(start))
    print(f"slider key press -> new plot in the browser: {time.monotonic() - pressed:.2f} s")
    page.get_by_text("update 2:").first.wait_for(timeout=_left(start))
    assert readout.inner_text() != value0
    png1 = plot.screenshot()
    assert png1 != png0, "the plot did not change after moving the slider"
    _assert_no_traceback(page)

    widget = page.locator(".gradreg-explorer")
    widget.screenshot(path=str(BUILD / "explorer.png"))
    page.screenshot(path=str(BUILD / "explorer_lab.png"))


def _assert_no_traceback(page) -> None:
    for text in page.locator(STDERR_OUTPUT).all_inner_texts():
        assert "Traceback" not in text, text
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.all_inner_texts()
    assert page.get_by_text("Error displaying widget").count() == 0


# ---------------------------------------------------------------------------------- slides

SLIDES_DEADLINE_S = 120


def test_slides_in_chromium(smoke_notebooks, tmp_path):
    """The lecture slides (notebooks 01-03 at the smoke profile, reveal.js and MathJax installed
    from npm into the slides' vendor/ folder) open from the file system in headless Chromium
    with every request to the network refused: reveal.js starts, the first slide shows the
    notebook's title, the formulas are typeset, nothing fails to load, and every slide fits
    the 1280 x 800 slide (a derivation that does not fit would have to scroll)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install Debian's Chromium with "
                    "`apt-get update && apt-get install -y chromium` to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (Python client)")
    from gradreg import teaching
    if not shutil.which("npm"):
        pytest.skip("npm not found: the offline slides install reveal.js and MathJax from npm (install Node.js)")
    for stem in teaching.SLIDE_NOTEBOOKS:
        smoke_notebooks(stem)
    out = tmp_path / "slides"
    try:
        teaching.build_slides(out, profile="smoke", executed_dir=smoke_notebooks.executed_dir, reveal="npm",
                              npm_cache=BUILD / ".npm-vendor", log=lambda *args: None)
    except RuntimeError as error:
        pytest.skip(f"could not install reveal.js from npm: {error}")
    start = time.monotonic()
    BUILD.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for stem in teaching.SLIDE_NOTEBOOKS:
                title = teaching.notebook_title(nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4))
                _check_deck(browser.new_page(viewport={"width": 1280, "height": 800}),
                            out / f"{stem}.slides.html", title, BUILD / f"slides_{stem[:2]}.png", start)
        finally:
            browser.close()
    assert time.monotonic() - start < SLIDES_DEADLINE_S


def _check_deck(page, path: Path, title: str, screenshot: Path, start: float) -> None:
    outside, failed, errors = [], [], []

    def refuse_network(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()
    page.route("**/*", refuse_network)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(path.as_uri(), timeout=_left_slides(start))
    page.wait_for_selector(".reveal.ready", timeout=_left_slides(start))      # reveal.js initialised
    heading = page.locator(".reveal .slides section.present h1").first
    heading.wait_for(state="visible", timeout=_left_slides(start))
    assert heading.inner_text().strip() == title
    page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
                           " && !MathJax.Hub.queue.running && document.querySelector('.mjx-chtml')",
                           timeout=_left_slides(start))
    page.screenshot(path=str(screenshot))
    assert not outside, f"{path.name} asked the network for {outside}"
    assert not failed, f"{path.name}: failed to load {failed}"
    assert not errors, f"{path.name}: {errors}"

    # every slide (horizontal and vertical) fits: step through with reveal.js's own API
    reveal_js = page.get_attribute('link[href$="/dist/reveal.css"]', "href").replace("/dist/reveal.css",
                                                                                      "/dist/reveal.js")
    page.evaluate("(url) => new Promise(done => require([url], R => { window.gradregReveal = R; done(); }))",
                  reveal_js)
    sizes = page.evaluate("""() => {
        const R = window.gradregReveal, out = [];
        R.configure({transition: 'none'});
        R.slide(0, 0);
        for (let k = 0; k < 200; k++) {
            const s = R.getCurrentSlide(), i = R.getIndices();
            out.push({h: i.h, v: i.v, height: s.scrollHeight, width: s.scrollWidth,
                      text: (s.innerText || '').trim().slice(0, 50)});
            if (R.isLastSlide()) break;
            R.next();
        }
        return {slides: out, total: R.getTotalSlides(), config: R.getConfig()};
    }""")
    assert sizes["total"] >= 10 and len(sizes["slides"]) >= sizes["total"]
    config = sizes["config"]
    too_big = [f"slide {s['h']}.{s['v']} ({s['width']} x {s['height']}): {s['text']!r}"
               for s in sizes["slides"] if s["height"] > config["height"] or s["width"] > config["width"]]
    assert not too_big, f"{path.name}: slides larger than {config['width']} x {config['height']}: {too_big}"
    page.close()


def _left_slides(start: float) -> float:
    return max(1000.0, (SLIDES_DEADLINE_S - (time.monotonic() - start)) * 1000)
