"""The explorer's widget: a thin anywidget that lays out what the kernel sends.

The browser code and style are real files shipped with the package, ``static/explorer.js``
and ``static/explorer.css`` (anywidget reads them). The kernel sends four synced traits:
``shortcuts`` (once: the keys the kernel acts on and the help line, from :data:`KEYS` and
:data:`KEY_MAP`), ``view`` (the row: texts, numbers, lanes, axes, the re-isolation quote,
messages), ``table`` (one page of the queue table) and ``media`` (WAV and PNG bytes per lane,
sent as binary buffers). The browser sends back actions as custom messages
(``{"action": "decide", "decision": "keep"}``...), which :meth:`ExplorerWidget.receive`
passes to the explorer. Playback, the playhead, click-to-seek and lane switching stay in the
browser. Keys pressed while the explorer has the focus go to the explorer only: the browser
code stops them from reaching JupyterLab or the Notebook (no cell is deleted by ``d d``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._view import KEY_MAP, KEYS

STATIC = Path(__file__).parent / "static"


class ExplorerWidget(anywidget.AnyWidget):
    """The browser side of :class:`~samaudio_data.explorer.Explorer`.

    >>> w = ExplorerWidget(lambda action: print("got", action))
    >>> w.receive({"action": "next"})
    got {'action': 'next'}
    >>> "k" in w.shortcuts["actions"], "export default" in w._esm
    (True, True)
    """

    _esm = STATIC / "explorer.js"
    _css = STATIC / "explorer.css"
    shortcuts = traitlets.Dict().tag(sync=True)  # ("keys" is ipywidgets' own attribute)
    view = traitlets.Dict().tag(sync=True)
    table = traitlets.Dict().tag(sync=True)
    media = traitlets.Dict().tag(sync=True)

    def __init__(self, handler: Callable[[dict[str, Any]], None] | None = None, **kwargs) -> None:
        kwargs.setdefault("shortcuts", {"actions": list(KEYS), "help": [list(k) for k in KEY_MAP]})
        super().__init__(**kwargs)
        self._handler = handler
        self.add_class("samaudio-explorer")
        self.on_msg(self._on_custom_msg)

    def _on_custom_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict):
            self.receive(content)

    def receive(self, content: dict[str, Any]) -> None:
        """Handle one action as the browser sends it (what a click or a key press does)."""
        if self._handler is not None:
            self._handler(dict(content))
