"""The explorer widget's browser code and style (kept as strings: no build step, no data
files to package).

Layout: lanes are a CSS grid that follows the explorer's own width (container queries), so
it works in a narrow notebook column, beside JupyterLab's side panel, or full width: from
1100 px each lane is one line (label and player, waveform, spectrogram); from 620 px the
waveform and spectrogram share a second line; below that everything stacks. Players never
get narrower than 200 px.
"""

from ._frontend_js import ESM

CSS = r"""
.samaudio-explorer { max-width: 100%; min-width: 0; }
.sa-root { container-type: inline-size; box-sizing: border-box; max-width: 100%;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
  border: 1px solid #d0d0d0; border-radius: 6px; padding: 8px 10px; outline: none;
  background: #fff; overflow-x: hidden; }
.sa-root * { box-sizing: border-box; }
.sa-root.sa-focused { border-color: #1f77b4; box-shadow: 0 0 0 2px rgba(31,119,180,.25); }
.sa-top { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center;
  justify-content: space-between; }
.sa-top-left { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; min-width: 0; }
.sa-title { font-weight: 600; font-size: 14px; }
.sa-position, .sa-info, .sa-counts, .sa-pageinfo, .sa-spend { color: #555; }
.sa-badge { color: #fff; background: #777; padding: 1px 8px; border-radius: 3px; }
.sa-d-keep.sa-badge { background: #1a7f37; } .sa-d-discard.sa-badge { background: #c62828; }
.sa-d-flag.sa-badge { background: #b26a00; }
td.sa-d-keep { color: #1a7f37; font-weight: 600; } td.sa-d-discard { color: #c62828; font-weight: 600; }
td.sa-d-flag { color: #b26a00; font-weight: 600; }
.sa-keys { padding: 1px 8px; border-radius: 10px; background: #eee; color: #555; font-size: 12px;
  white-space: nowrap; }
.sa-focused .sa-keys { background: #1f77b4; color: #fff; }
.sa-error, .sa-bad { color: #c62828; }
.sa-lanes { display: flex; flex-direction: column; gap: 6px; margin: 6px 0; }
.sa-lane { display: grid; grid-template-columns: minmax(0, 1fr); grid-template-areas:
  "head" "wave" "spec"; gap: 4px 8px; align-items: center; padding: 3px; border-radius: 4px;
  border-left: 3px solid transparent; }
.sa-lane.sa-active { border-left-color: #1f77b4; background: #f4f8fc; }
@container (min-width: 620px) {
  .sa-lane { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
    grid-template-areas: "head head" "wave spec"; } }
@container (min-width: 1100px) {
  .sa-lane { grid-template-columns: minmax(330px, 1.1fr) minmax(0, 1.3fr) minmax(0, 1.3fr);
    grid-template-areas: "head wave spec"; } }
.sa-lhead { grid-area: head; display: flex; align-items: center; gap: 8px; min-width: 0; }
.sa-label { flex: 0 0 110px; min-width: 0; overflow: hidden; }
.sa-label b { display: block; }
.sa-note { display: block; color: #666; font-size: 11px; line-height: 1.2; overflow-wrap: anywhere; }
.sa-player { flex: 1 1 auto; min-width: 200px; width: 100%; height: 36px; }
.sa-plot { position: relative; min-width: 0; height: 64px; cursor: crosshair; overflow: hidden;
  border-radius: 3px; background: #fcfcfc; }
.sa-wave { grid-area: wave; } .sa-spec { grid-area: spec; background: #000004; }
.sa-img { display: block; width: 100%; height: 100%; image-rendering: auto; }
.sa-empty .sa-plot, .sa-empty .sa-player { opacity: .35; }
.sa-axis { position: absolute; inset: 0; pointer-events: none; }
.sa-tick { position: absolute; bottom: 0; font-size: 10px; line-height: 1; color: #666;
  padding: 0 2px; border-left: 1px solid rgba(0,0,0,.35); height: 7px; white-space: nowrap; }
.sa-tick-end { transform: translateX(-100%); border-left: none; border-right: 1px solid rgba(0,0,0,.35); }
.sa-spec .sa-tick { font-size: 0; height: 5px; border-color: rgba(255,255,255,.6); }
.sa-ftick { position: absolute; left: 2px; font-size: 10px; line-height: 1; color: #eee;
  transform: translateY(50%); text-shadow: 0 0 2px #000; }
.sa-playhead { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px;
  background: #e53935; pointer-events: none; left: 0; }
.sa-hidden { display: none !important; }
.sa-actions, .sa-filters, .sa-bulk, .sa-reiso, .sa-pager, .sa-qhead { display: flex; flex-wrap: wrap;
  gap: 4px 6px; align-items: center; margin: 4px 0; }
.sa-gap { flex: 0 0 10px; }
.sa-btn { font: inherit; padding: 3px 9px; border: 1px solid #bbb; border-radius: 4px;
  background: #f7f7f7; cursor: pointer; white-space: nowrap; }
.sa-btn:hover:not(:disabled) { background: #ececec; } .sa-btn:disabled { opacity: .5; cursor: default; }
.sa-keep { background: #e3f3e7; border-color: #1a7f37; } .sa-discard { background: #fbe4e4; border-color: #c62828; }
.sa-flag { background: #fdf0dc; border-color: #b26a00; }
.sa-primary { background: #1f77b4; border-color: #1f77b4; color: #fff; }
.sa-primary:hover:not(:disabled) { background: #17649a; }
.sa-input, .sa-select { font: inherit; padding: 2px 5px; border: 1px solid #bbb; border-radius: 4px;
  max-width: 100%; min-width: 0; }
.sa-lbl { color: #555; }
.sa-message { min-height: 1.4em; }
.sa-signals { display: flex; flex-wrap: wrap; gap: 2px 14px; margin: 4px 0; }
.sa-sig { display: flex; flex-direction: column; min-width: 0; }
.sa-sig small { color: #666; } .sa-sigval { font-variant-numeric: tabular-nums; }
.sa-was { color: #999; }
.sa-queue { border-top: 1px solid #e2e2e2; margin-top: 6px; padding-top: 4px; }
.sa-qhead { gap: 10px; }
.sa-table-wrap { overflow-x: auto; max-width: 100%; }
.sa-table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.sa-table th { text-align: left; font-weight: 600; padding: 2px 8px; border-bottom: 1px solid #ccc;
  cursor: pointer; white-space: nowrap; user-select: none; }
.sa-table td { padding: 2px 8px; border-bottom: 1px solid #f0f0f0; white-space: nowrap; }
.sa-table .sa-num { text-align: right; }
.sa-table td.sa-text { max-width: 28ch; overflow: hidden; text-overflow: ellipsis; }
.sa-table tbody tr { cursor: pointer; } .sa-table tbody tr:hover { background: #f3f6fa; }
.sa-table tr.sa-current { background: #dcebf7; outline: 1px solid #1f77b4; }
.sa-confirm-text { font-weight: 600; }
.sa-quote { color: #333; }
.sa-help { display: flex; flex-wrap: wrap; gap: 2px 12px; color: #666; font-size: 12px;
  border-top: 1px solid #eee; padding-top: 4px; }
.sa-help kbd { font: 11px monospace; border: 1px solid #ccc; border-radius: 3px; padding: 0 4px;
  background: #f7f7f7; }
"""

__all__ = ["CSS", "ESM"]
