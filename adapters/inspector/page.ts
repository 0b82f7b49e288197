/**
 * The inspector page: HTML and CSS here, the script in page-script.ts. They are strings compiled into the
 * engine, not files next to it, so the published package (which ships `dist/` only) needs no copy step, and the
 * page needs nothing from a CDN (machines may be offline).
 */
export { pageScript } from './page-script.js';

/** The token is hex; escaped all the same, as anything put into HTML should be. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page's HTML; its script and style load with the token, as every request must carry it. */
export function pageHtml(token: string): string {
  const t = encodeURIComponent(token);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>delegate inspector</title>
<link rel="stylesheet" href="/app.css?token=${escapeHtml(t)}">
</head>
<body>
<header>
  <h1>delegate inspector</h1>
  <span id="summary"></span>
  <span id="connection" class="connection" data-connected="false">connecting…</span>
</header>
<main>
  <aside id="live" aria-label="Live actors"></aside>
  <section id="work">
    <div id="detail" class="panel"><p class="hint">Select an actor on the left to see its statechart and events.</p></div>
    <div id="graph" class="panel" hidden></div>
    <div id="history" class="panel"></div>
  </section>
</main>
<script src="/app.js?token=${escapeHtml(t)}"></script>
</body>
</html>
`;
}

/** The page's style: light and dark, and one column on narrow screens. */
export const pageStyle = `
:root { --bg: #fafafa; --fg: #1d1d1f; --muted: #6b6b70; --panel: #fff; --line: #d9d9de; --accent: #2d6cdf;
  --ok: #1f8a4c; --bad: #c53030; --warn: #b7791f; --run: #2d6cdf; --idle: #8a8a91; font: 13px/1.4 system-ui, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --bg: #161618; --fg: #e8e8ea; --muted: #9a9aa1; --panel: #1f1f22; --line: #3a3a40; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; gap: 16px; align-items: baseline; padding: 8px 16px; border-bottom: 1px solid var(--line); }
h1 { font-size: 16px; margin: 0; }
h2 { font-size: 14px; margin: 0 0 8px; }
h3 { font-size: 12px; margin: 12px 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
#summary { color: var(--muted); }
.connection { margin-left: auto; color: var(--bad); }
.connection[data-connected="true"] { color: var(--ok); }
main { display: grid; grid-template-columns: minmax(260px, 340px) 1fr; min-height: calc(100vh - 40px); }
@media (max-width: 900px) { main { grid-template-columns: 1fr; } }
aside { border-right: 1px solid var(--line); padding: 8px 12px; overflow: auto; max-height: calc(100vh - 40px); }
#work { padding: 12px; overflow: auto; min-width: 0; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px; margin-bottom: 12px; overflow: auto; }
.hint { color: var(--muted); }
ul.actors { list-style: none; margin: 0; padding: 0; }
li.actor { display: flex; gap: 6px; align-items: baseline; padding: 3px 6px; border-radius: 4px; cursor: pointer; }
li.actor:hover { background: color-mix(in srgb, var(--accent) 10%, transparent); }
li.actor[aria-selected="true"] { background: color-mix(in srgb, var(--accent) 20%, transparent); }
li.actor .id { font-family: ui-monospace, monospace; white-space: nowrap; }
li.actor .label { color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; }
.node-head { font-family: ui-monospace, monospace; color: var(--muted); margin-top: 6px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; color: #fff; background: var(--idle); white-space: nowrap; }
.s-running, .s-busy, .s-starting, .s-claiming, .s-active { background: var(--run); }
.s-completed { background: var(--ok); }
.s-failed, .s-aborting, .s-expired { background: var(--bad); }
.s-cancelled, .s-stopped, .s-draining { background: #6b6b70; }
.s-paused, .s-waiting, .s-settling { background: var(--warn); }
.s-ready, .s-queued { background: #7b5ad6; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.fields dt { color: var(--muted); }
dl.fields dd { margin: 0; overflow-wrap: anywhere; }
.mono { font-family: ui-monospace, monospace; }
a.task-link { color: var(--accent); cursor: pointer; text-decoration: underline; }
.actions { display: flex; gap: 8px; margin: 8px 0; }
button { font: inherit; padding: 3px 10px; border-radius: 4px; border: 1px solid var(--line); background: var(--panel); color: var(--fg); cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
button.danger { border-color: var(--bad); color: var(--bad); }
.error { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.prompt { white-space: normal; max-width: 420px; overflow-wrap: anywhere; }
tbody tr[data-task-id] { cursor: pointer; }
tbody tr[data-task-id]:hover { background: color-mix(in srgb, var(--accent) 10%, transparent); }
.pager { display: flex; gap: 8px; align-items: center; margin-top: 8px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { fill: var(--fg); font: 11px system-ui, sans-serif; }
svg .state rect { fill: var(--panel); stroke: var(--line); stroke-width: 1.5; }
svg .state.compound > rect, svg .state.parallel > rect { fill: transparent; }
svg .state.parallel > rect { stroke-dasharray: 5 3; }
svg .state.final > rect { stroke-width: 3; stroke: var(--muted); }
svg .state.current > rect { fill: color-mix(in srgb, var(--accent) 25%, var(--panel)); stroke: var(--accent); stroke-width: 3; }
svg .state.current.compound > rect, svg .state.current.parallel > rect { fill: color-mix(in srgb, var(--accent) 6%, transparent); }
svg .state.current > text { font-weight: bold; }
svg .initial { fill: var(--muted); }
svg .transition path { fill: none; stroke: var(--muted); stroke-width: 1.2; opacity: .55; }
svg .transition text { font-size: 9.5px; fill: var(--muted); paint-order: stroke; stroke: var(--panel); stroke-width: 3px; }
svg .transition.available path { stroke: var(--accent); opacity: 1; }
svg .transition.available text { fill: var(--accent); }
svg marker path { fill: var(--muted); }
svg .dag-node rect { stroke: var(--line); stroke-width: 1.5; fill: var(--panel); }
svg .dag-node { cursor: pointer; }
svg .dag-node.selected rect { stroke: var(--accent); stroke-width: 3; }
svg .dag-node .bar { stroke: none; }
svg .dag-edge { fill: none; stroke-width: 2; }
.c-completed { fill: var(--ok); stroke: var(--ok); }
.c-failed { fill: var(--bad); stroke: var(--bad); }
.c-cancelled { fill: #6b6b70; stroke: #6b6b70; }
.c-running { fill: var(--run); stroke: var(--run); }
.c-paused, .c-waiting { fill: var(--warn); stroke: var(--warn); }
.c-ready, .c-queued { fill: #7b5ad6; stroke: #7b5ad6; }
svg .dag-edge.c-queued, svg .dag-edge.c-waiting, svg .dag-edge.c-ready, svg .dag-edge.c-paused { stroke-dasharray: 5 4; }
.legend { color: var(--muted); font-size: 12px; }
`;
