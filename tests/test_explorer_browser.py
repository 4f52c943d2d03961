"""The explorer in a real JupyterLab and a real Jupyter Notebook 7, driven by headless
Chromium through playwright.

Once per front end, starts JupyterLab (``python -m jupyterlab``) or Notebook 7
(``python -m notebook``) on 127.0.0.1 (free port, random token, temporary root, settings and
workspace directories), opens a notebook that builds a 24-row dataset with text columns
against a LocalEndpoint started inside the kernel, shows the explorer, and checks in the page:

- layout at 1600, 1280, 1100 and 900 px wide (in JupyterLab with and without the side panel):
  the three players are at least 200 px wide and nothing overflows sideways;
- keys reach the explorer while it has the focus ("keys active"), and not the notebook:
  ``d d`` discards two rows and deletes no cell; ``z`` undoes; ``2`` then space plays the
  isolated lane and its playhead follows the playback;
- a click on a waveform seeks the player there and moves the playhead;
- a click in the queue table opens that row;
- a bulk discard of the filtered rows (confirmed with its count) and its undo;
- a re-isolation priced then confirmed (JupyterLab);
- the session resumes in a new explorer built from the session file.

Screenshots go to ``test-artifacts/explorer-<front end>-<width>[-sidepanel].png`` and
``test-artifacts/explorer-<front end>-widget.png`` (the whole widget, used for the README).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
WIDTHS = (1600, 1280, 1100, 900)

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"{CHROMIUM} is missing: install Debian's chromium "
        "(make install-test) to run the browser test",
    ),
]

SETUP_CELL = """\
import os, sys
from samaudio_data import Client
from samaudio_data.explorer import Explorer, example_dataset
from samaudio_data.testing import LocalEndpoint

key = os.environ["SAMAUDIO_BROWSER_TEST_KEY"]  # never written into the notebook
endpoint = LocalEndpoint(keys={{key: None}}).start()
client = Client(key, endpoint=endpoint.url, cache_dir={cache!r}, progress=False)
ds = example_dataset(24)
ex = Explorer(ds, client=client, session={session!r}, description="half")
ex"""
PRINT_CELL = 'print("DECISIONS", ex.decisions, "REQUESTS", endpoint.stats["requests"])'
RESUME_CELL = "ex2 = Explorer(ds, client=client, session={session!r})\nex2"
# several sounds per row: the explorer finds the stems and offers a selector
STEMS_CELL = """\
from samaudio_data import isolate
two = ds.select(range(2)).select_columns(["audio", "text"])
stems = two.map(isolate({"low": "bass", "quiet": "half"}, client=client), batched=True)
Explorer(stems, client=client)"""

BROWSER_KEY = "sk-test-browser-SECRET-4711"

LAYOUT_JS = """() => {
  const root = document.querySelector('.samaudio-explorer .sa-root');
  const r = root.getBoundingClientRect();
  const panel = root.closest('.jp-WindowedPanel-outer, .jp-Notebook') || document.body;
  const kids = [...root.querySelectorAll('.sa-lane, .sa-actions, .sa-queue, .sa-top, .sa-reiso')];
  return {
    players: [...root.querySelectorAll('audio')].map(a => a.getBoundingClientRect().width),
    rootScroll: root.scrollWidth, rootClient: root.clientWidth, rootWidth: r.width,
    overflowing: kids.filter(k => k.getBoundingClientRect().right > r.right + 1).length,
    panelScroll: panel.scrollWidth, panelClient: panel.clientWidth,
    docScroll: document.documentElement.scrollWidth,
    docClient: document.documentElement.clientWidth,
    stacked: getComputedStyle(root.querySelector('.sa-lane')).gridTemplateAreas,
    tableScroll: root.querySelector('.sa-table-wrap').scrollWidth,
    tableClient: root.querySelector('.sa-table-wrap').clientWidth,
    headers: [...root.querySelectorAll('.sa-table th')].map(t => t.textContent),
  };
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(path: Path, cells) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


# front end -> (module run as ``python -m``, where it serves the notebook)
FRONTENDS = {
    "lab": ("jupyterlab", "/lab/tree/explorer.ipynb"),
    "notebook": ("notebook", "/notebooks/explorer.ipynb"),
}


@pytest.fixture(params=sorted(FRONTENDS))
def jupyter(request, tmp_path):
    frontend = request.param
    module, path = FRONTENDS[frontend]
    root = tmp_path / "root"
    root.mkdir()
    session = str(tmp_path / "review.json")
    _notebook(
        root / "explorer.ipynb",
        [
            SETUP_CELL.format(cache=str(tmp_path / "cache"), session=session),
            PRINT_CELL,
            RESUME_CELL.format(session=session),
            STEMS_CELL,
        ],
    )
    settings = tmp_path / "settings" / "@jupyterlab"
    for ext, plugin, value in (
        ("notebook-extension", "tracker", {"autoStartDefaultKernel": True}),
        ("apputils-extension", "notification", {"fetchNews": "false"}),
    ):
        (settings / ext).mkdir(parents=True, exist_ok=True)
        (settings / ext / f"{plugin}.jupyterlab-settings").write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["SAMAUDIO_BROWSER_TEST_KEY"] = BROWSER_KEY
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    cmd = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyter.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{module} exited: " + (tmp_path / "jupyter.log").read_text()[-2000:]
                )
            try:
                if (
                    requests.get(
                        f"{base}/api/status", params={"token": token}, timeout=2
                    ).status_code
                    == 200
                ):
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{module} did not start within 60 s")
            time.sleep(0.3)
        yield {
            "frontend": frontend,
            "url": f"{base}{path}?token={token}",
            "base": base,
            "token": token,
            "root": root,
            "tmp": tmp_path,
        }
    finally:
        try:
            requests.post(f"{base}/api/shutdown", params={"token": token}, timeout=5)
        except requests.RequestException:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _run_cell(page, index: int) -> None:
    """Run one cell in place (Ctrl+Enter in its editor), retried until it starts."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    before = prompt.inner_text().strip()
    for _ in range(40):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        for _ in range(10):
            now = prompt.inner_text().strip()
            if now != before and now not in ("[ ]:", "[ ]"):
                return
            time.sleep(0.2)
    raise AssertionError(f"cell {index} did not start")


def _check_layout(page, frontend: str, width: int, tag: str) -> dict:
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(300)
    m = page.evaluate(LAYOUT_JS)
    assert len(m["players"]) == 3 and min(m["players"]) >= 200, (width, tag, m)
    assert m["rootScroll"] <= m["rootClient"] + 1, (width, tag, m)
    assert m["overflowing"] == 0, (width, tag, m)
    assert m["panelScroll"] <= m["panelClient"] + 1, (width, tag, m)
    assert m["docScroll"] <= m["docClient"] + 1, (width, tag, m)
    # the queue table, with its default columns, fits its box: nothing scrolled out of view
    assert m["tableScroll"] <= m["tableClient"] + 1, (width, tag, m)
    assert len(m["headers"]) == 10, m["headers"]  # #, decision and the 8 default columns
    page.screenshot(path=str(ARTIFACTS / f"explorer-{frontend}-{width}{tag}.png"))
    return m


def _lab_side_panel(page, open_: bool) -> None:
    tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']")
    is_open = page.locator("#jp-left-stack").is_visible()
    if is_open != open_:
        tab.click()
        page.wait_for_timeout(400)
    assert page.locator("#jp-left-stack").is_visible() == open_


def test_explorer_in_jupyter(jupyter):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    frontend = jupyter["frontend"]
    base, token = jupyter["base"], jupyter["token"]
    r = requests.post(
        f"{base}/api/sessions",
        params={"token": token},
        timeout=30,
        json={
            "path": "explorer.ipynb",
            "name": "explorer.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
    )
    assert r.status_code == 201, r.text
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(jupyter["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
            )
            _run_cell(page, 0)
            ex = page.locator(".samaudio-explorer").first
            expect(ex).to_be_visible(timeout=60_000)
            root = ex.locator(".sa-root")
            title, counts = root.locator(".sa-title"), root.locator(".sa-counts")
            expect(title).to_have_text("row 1 of 24", timeout=30_000)
            page.wait_for_function(
                """() => {
                  const a = [...document.querySelectorAll('.samaudio-explorer audio')];
                  const i = [...document.querySelectorAll('.samaudio-explorer img.sa-img')];
                  return a.length === 3 && a.every(x => x.readyState >= 1 &&
                    Math.abs(x.duration - 1) < 0.05) && i.length === 6 &&
                    i.every(x => x.complete && x.naturalWidth === 600);
                }""",
                timeout=20_000,
            )
            for a in root.locator("audio").evaluate_all(
                "els => els.map(a => ({autoplay: a.autoplay, loop: a.loop, "
                "controls: a.controls, paused: a.paused}))"
            ):
                assert a == {"autoplay": False, "loop": False, "controls": True, "paused": True}, a
            # the table shows the text columns, 1-based, the current row highlighted
            expect(root.locator(".sa-table th")).to_contain_text(["#", "decision", "path", "text"])
            current = root.locator(".sa-table tr.sa-current")
            expect(current).to_have_count(1)
            expect(current.locator("td").first).to_have_text("1")
            expect(current).to_contain_text("rain on a tin roof")

            # --- layout at three widths ----------------------------------------------------
            tags = [("", None)]
            if frontend == "lab":
                tags = [("-sidepanel", True), ("", False)]
            for tag, panel in tags:
                if panel is not None:
                    page.set_viewport_size({"width": 1600, "height": 1000})
                    _lab_side_panel(page, panel)
                for width in WIDTHS:
                    m = _check_layout(page, frontend, width, tag)
                    if width == 900:  # narrow: waveform and spectrogram stack
                        assert '"head head"' in m["stacked"] or '"head"' in m["stacked"], m
            page.set_viewport_size({"width": 1280, "height": 1000})

            # --- keys: focus the explorer, the notebook gets nothing ---------------------------
            cells_before = page.locator(".jp-Notebook .jp-Cell").count()
            keys_state = root.locator(".sa-keys")
            expect(keys_state).to_have_text("click here to use keys")
            root.locator(".sa-info").click()
            expect(keys_state).to_have_text("keys active")
            page.keyboard.press("k")
            expect(title).to_have_text("row 2 of 24", timeout=15_000)
            page.keyboard.press("d")
            page.keyboard.press("d")
            expect(counts).to_contain_text(
                "1 keep · 2 discard · 0 flag · 21 undecided", timeout=15_000
            )
            expect(title).to_have_text("row 4 of 24")
            page.keyboard.press("f")
            expect(title).to_have_text("row 5 of 24", timeout=15_000)
            expect(counts).to_contain_text("1 flag")
            page.keyboard.press("j")
            expect(title).to_have_text("row 4 of 24", timeout=15_000)
            page.keyboard.press("z")  # undo the flag
            expect(root.locator(".sa-message")).to_have_text("undid flag of row 4", timeout=15_000)
            expect(counts).to_contain_text("1 keep · 2 discard · 0 flag · 21 undecided")
            for key in ("a", "b", "m", "Enter"):  # notebook shortcuts: none may act
                page.keyboard.press(key)
            page.wait_for_timeout(300)
            assert page.locator(".jp-Notebook .jp-Cell").count() == cells_before
            expect(page.locator(".jp-Notebook .jp-MarkdownCell")).to_have_count(0)
            expect(page.locator(".jp-Notebook.jp-mod-editMode")).to_have_count(0)
            expect(keys_state).to_have_text("keys active")
            # 2 chooses the isolated lane, space plays it: the playhead follows, space pauses
            page.keyboard.press("2")
            expect(root.locator(".sa-lane.sa-active")).to_have_attribute("data-lane", "isolated")
            page.keyboard.press(" ")
            iso_lane = root.locator(".sa-lane[data-lane='isolated']")
            state = {}
            for _ in range(100):
                state = iso_lane.locator("audio").evaluate(
                    "a => ({t: a.currentTime, paused: a.paused, ended: a.ended, "
                    "ready: a.readyState, error: a.error && a.error.code})"
                )
                if state["t"] > 0.3:
                    break
                page.wait_for_timeout(100)
            assert state["t"] > 0.3, state
            head = iso_lane.locator(".sa-spec .sa-playhead").evaluate(
                "e => parseFloat(e.style.left)"
            )
            assert head > 20, head
            page.keyboard.press(" ")
            assert iso_lane.locator("audio").evaluate("a => a.paused")
            page.keyboard.press("1")
            expect(root.locator(".sa-lane.sa-active")).to_have_attribute("data-lane", "original")
            assert page.locator(".jp-Notebook .jp-Cell").count() == cells_before

            # --- click-to-seek ----------------------------------------------------------------
            wave = root.locator(".sa-lane[data-lane='original'] .sa-wave")
            box = wave.bounding_box()
            wave.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
            t = root.locator(".sa-lane[data-lane='original'] audio").evaluate("a => a.currentTime")
            assert abs(t - 0.5) < 0.03, t
            left = root.locator(".sa-lane[data-lane='original'] .sa-wave .sa-playhead").evaluate(
                "e => parseFloat(e.style.left)"
            )
            assert abs(left - 50) < 3, left

            # --- the queue table opens a row ------------------------------------------------
            root.locator(".sa-table tbody tr[data-row='7']").click()
            expect(title).to_have_text("row 7 of 24", timeout=15_000)
            expect(root.locator(".sa-table tr.sa-current td").first).to_have_text("7")
            # out-of-range row number: an error message, no jump
            box_row = root.locator(".sa-actions input")
            box_row.fill("99")
            box_row.press("Enter")
            expect(root.locator(".sa-message")).to_have_text(
                "row 99 is out of range: rows are 1..24.", timeout=15_000
            )
            expect(title).to_have_text("row 7 of 24")

            # --- bulk discard of the filter, then undo --------------------------------------
            root.locator(".sa-filters select").nth(1).select_option("undecided")
            expect(root.locator(".sa-pageinfo")).to_contain_text("21 of 24 rows", timeout=15_000)
            root.get_by_role("button", name="discard all 21").click()
            expect(root.locator(".sa-confirm-text")).to_have_text(
                "discard all 21 rows of the current filter?", timeout=15_000
            )
            root.get_by_role("button", name="yes, discard 21 rows").click()
            expect(counts).to_contain_text(
                "1 keep · 23 discard · 0 flag · 0 undecided", timeout=15_000
            )
            root.get_by_role("button", name="undo (z)").click()
            expect(counts).to_contain_text(
                "1 keep · 2 discard · 0 flag · 21 undecided", timeout=15_000
            )
            root.get_by_role("button", name="clear filter").click()
            expect(root.locator(".sa-pageinfo")).to_contain_text("24 of 24 rows", timeout=15_000)

            requests_expected = 0
            if frontend == "lab":  # re-isolate the row shown: price, then confirm
                root.get_by_role("button", name="price", exact=True).click()
                expect(root.locator(".sa-quote")).to_contain_text("costs $0.062", timeout=15_000)
                root.get_by_role("button", name="confirm: spend $0.062").click()
                expect(root.locator(".sa-message")).to_have_text(
                    "row 7 re-isolated with 'half' for $0.062.", timeout=15_000
                )
                expect(root.locator(".sa-spend")).to_have_text(
                    "spent $1.550 = dataset $1.488 + re-isolations $0.062"
                )
                expect(root.locator(".sa-table tr.sa-current")).to_contain_text("$0.124")
                requests_expected = 1
            page.set_viewport_size({"width": 1280, "height": 1900})  # the whole widget
            ex.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            ex.screenshot(path=str(ARTIFACTS / f"explorer-{frontend}-widget.png"))
            page.set_viewport_size({"width": 1280, "height": 1000})

            # focus elsewhere: the explorer says so and takes no keys
            page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt").click()
            expect(keys_state).to_have_text("click here to use keys")
            page.keyboard.press("k")
            page.wait_for_timeout(500)
            expect(counts).to_contain_text("1 keep · 2 discard · 0 flag · 21 undecided")

            # --- the kernel agrees, and the session resumes in a new explorer --------------
            _run_cell(page, 1)
            out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
            expect(out).to_contain_text(
                f"DECISIONS {{0: 'keep', 1: 'discard', 2: 'discard'}} REQUESTS {requests_expected}",
                timeout=30_000,
            )
            _run_cell(page, 2)
            second = page.locator(".samaudio-explorer").nth(1).locator(".sa-root")
            expect(second.locator(".sa-counts")).to_contain_text(
                "1 keep · 2 discard · 0 flag · 21 undecided", timeout=30_000
            )
            expect(second.locator(".sa-title")).to_have_text("row 7 of 24")
            expect(second.locator(".sa-stem")).to_be_hidden()  # one stem: no selector
            if frontend == "lab":  # two stems: a selector; the row's own description
                _run_cell(page, 3)
                third = page.locator(".samaudio-explorer").nth(2).locator(".sa-root")
                stem = third.locator(".sa-stem")
                expect(stem).to_be_visible(timeout=60_000)
                assert stem.locator("option").all_inner_texts() == ["low", "quiet"]
                expect(third.locator(".sa-info")).to_contain_text("low isolated as 'bass'")
                expect(third.locator(".sa-reiso input").first).to_have_value("bass")
                stem.select_option("quiet")
                expect(third.locator(".sa-info")).to_contain_text(
                    "quiet isolated as 'half'", timeout=15_000
                )
                expect(third.locator(".sa-reiso input").first).to_have_value("half")
                expect(third.locator(".sa-signals")).to_contain_text("-6.0")
            assert BROWSER_KEY not in page.content()
        except BaseException:
            try:
                page.screenshot(path=str(ARTIFACTS / f"explorer-{frontend}-failure.png"))
            except Exception:  # noqa: BLE001 - keep the original failure
                pass
            raise
        finally:
            browser.close()
    text = (jupyter["tmp"] / "review.json").read_text()
    session = json.loads(text)
    assert session["decisions"] == {"0": "keep", "1": "discard", "2": "discard"}
    assert BROWSER_KEY not in text
