"""The example notebooks: stored clean, run end to end offline, never show the API key.

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose environment
forces the local endpoint (``SAMAUDIO_NOTEBOOK_LOCAL=1``) while a fake key is present in
``SEGMIND_API_KEY``: the notebooks must ignore it, and it must appear neither in their
outputs nor in anything written under the test's temporary directory (cache included).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_quickstart.ipynb", "02_clean_a_dataset.ipynb", "03_explorer.ipynb"]
FAKE_KEY = "sk-test-notebook-SECRET"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebook_is_valid_and_has_no_outputs(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata  # no stored widget state from a run
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and any(c.cell_type == "markdown" for c in nb.cells)
    for cell in code:
        assert cell.outputs == [], f"stored outputs in cell {cell.get('id')}"
        assert cell.execution_count is None, f"stored execution count in cell {cell.get('id')}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_offline_and_never_shows_the_key(name, tmp_path, monkeypatch):
    work, cache, tmp = tmp_path / "work", tmp_path / "cache", tmp_path / "tmp"
    for d in (work, tmp):
        d.mkdir()
    # set before the kernel starts, so the kernel inherits them
    monkeypatch.setenv("SAMAUDIO_NOTEBOOK_LOCAL", "1")
    monkeypatch.setenv("SAMAUDIO_CACHE_DIR", str(cache))
    monkeypatch.setenv("SEGMIND_API_KEY", FAKE_KEY)
    # a Client built from the environment would fail here instead of reaching the network
    monkeypatch.setenv("SAMAUDIO_ENDPOINT", "http://127.0.0.1:9/not-to-be-used")
    monkeypatch.setenv("TMPDIR", str(tmp))  # the notebooks' tempfile dirs land under tmp_path
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = json.dumps(outputs)  # everything the notebook displayed
    assert "Using a local endpoint" in shown and "Using the real endpoint" not in shown
    # booleans first: pytest's explanation of a failed `in` on megabytes of text takes minutes
    leaked = FAKE_KEY in shown or FAKE_KEY in nbformat.writes(nb)
    assert not leaked, "the API key appears in the executed notebook"

    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert cached, "the notebook did not use SAMAUDIO_CACHE_DIR"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            leaked = FAKE_KEY.encode() in path.read_bytes()
            assert not leaked, f"the API key was written to {path}"
