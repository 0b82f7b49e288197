/**
 * The inspector page's script, plain browser JavaScript with no dependencies. It loads the live actors, the
 * statecharts and a page of history once, then keeps them current from the SSE stream of events, applying each
 * event at once and re-reading the live list shortly after (for what events do not carry: labels, heartbeats,
 * the supervisor's state). Kept as a string (String.raw, so backslashes stay) and therefore written without
 * template literals; test/inspector.test.ts checks it parses.
 */
export const pageScript = String.raw`'use strict';
(function () {
  var token = new URLSearchParams(location.search).get('token') || '';
  var SVG = 'http://www.w3.org/2000/svg';
  var finished = ['completed', 'failed', 'cancelled'];
  var state = {
    charts: {}, live: null, selected: null, detail: null, detailError: null, graph: null,
    history: { rows: [], cursors: [null], index: 0, next: null },
  };

  // ---- small helpers --------------------------------------------------------------------------------------
  function api(path, init) {
    init = init || {};
    var headers = Object.assign({ 'x-delegate-token': token }, init.headers || {});
    return fetch(path, Object.assign({}, init, { headers: headers })).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error((body && body.error && body.error.message) || response.statusText);
        return body;
      });
    });
  }
  function h(tag, attrs) {
    var el = document.createElement(tag);
    setAttrs(el, attrs);
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function setAttrs(el, attrs) {
    for (var key in attrs || {}) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) continue;
      if (key === 'onclick') el.addEventListener('click', value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function replace(id, content) {
    var el = document.getElementById(id);
    el.textContent = '';
    append(el, content);
    return el;
  }
  function debounce(fn, ms) {
    var timer = null;
    return function () {
      if (timer) return;
      timer = setTimeout(function () { timer = null; fn(); }, ms);
    };
  }
  function time(ms) {
    if (ms === null || ms === undefined) return '';
    var d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  function dateTime(ms) { return ms === null || ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19); }
  function duration(ms) {
    if (ms === null || ms === undefined) return '';
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
  }
  function cost(usd) { return usd === null || usd === undefined ? '' : '$' + Number(usd).toFixed(4); }
  /** A state value as text: 'running', 'active.busy', 'running(claims.idle, growth.open)'. */
  function stateText(value) {
    if (value === null || value === undefined) return '?';
    if (typeof value === 'string') return value;
    var keys = Object.keys(value);
    if (keys.length === 1) {
      var inner = value[keys[0]];
      return keys[0] + (typeof inner === 'string' ? '.' + inner : '(' + stateText(inner) + ')');
    }
    return keys.map(function (k) { return k + '.' + stateText(value[k]); }).join(', ');
  }
  /** The state a badge is coloured by: the deepest first leaf. */
  function leafState(value) {
    while (value && typeof value === 'object') value = value[Object.keys(value)[0]];
    return String(value);
  }
  function badge(value) { return h('span', { class: 'badge s-' + leafState(value), 'data-field': 'state' }, stateText(value)); }
  /** Every state id active in a state value, for highlighting (ids are the key paths joined by dots). */
  function activeIds(rootId, value) {
    var ids = {};
    ids[rootId] = true;
    (function walk(prefix, v) {
      if (typeof v === 'string') { ids[prefix + '.' + v] = true; return; }
      for (var key in v || {}) { ids[prefix + '.' + key] = true; walk(prefix + '.' + key, v[key]); }
    })(rootId, value);
    return ids;
  }
  function select(kind, id) {
    location.hash = kind + '/' + id;
  }
  function taskLink(id) { return h('a', { class: 'task-link mono', onclick: function () { select('task', id); } }, id); }

  // ---- live actors --------------------------------------------------------------------------------------------
  var refreshLive = debounce(function () { loadLive(); }, 400);
  function loadLive() {
    return api('/api/live').then(function (live) { state.live = live; renderLive(); }).catch(function () { /* the stream's error shows it */ });
  }
  function actorItem(actor) {
    var selected = state.selected && state.selected.id === actor.id;
    return h('li', {
      class: 'actor', 'data-actor-id': actor.id, 'data-kind': actor.kind, 'data-state': leafState(actor.value),
      'aria-selected': selected ? 'true' : 'false', onclick: function () { select(actor.kind, actor.id); },
    }, h('span', { class: 'id' }, actor.kind === 'slot' || actor.kind === 'supervisor' ? actor.id.split('/').pop() : actor.id), badge(actor.value), h('span', { class: 'label', title: actor.label }, actor.label));
  }
  function renderLive() {
    var live = state.live;
    if (!live) return;
    var byKind = { task: [], schedule: [], slot: [], supervisor: [] };
    live.actors.forEach(function (a) { (byKind[a.kind] = byKind[a.kind] || []).push(a); });
    var slotNumber = function (a) { return Number(a.id.split('slot-').pop()) || 0; };
    var runners = live.nodes.map(function (node) {
      var mine = function (a) { return a.nodeId === node.id; };
      var actors = byKind.supervisor.filter(mine).concat(byKind.slot.filter(mine).sort(function (a, b) { return slotNumber(a) - slotNumber(b); }));
      return [
        h('div', { class: 'node-head', title: 'heartbeat ' + dateTime(node.heartbeatAt) }, node.id + ' · ' + node.host + ' · pid ' + node.pid),
        h('ul', { class: 'actors' }, actors.map(actorItem)),
      ];
    });
    var listed = byKind.task.length;
    replace('live', [
      h('h3', null, 'Runners (' + live.nodes.length + ')'),
      live.nodes.length ? runners : h('p', { class: 'hint' }, 'No runner is up (delegate serve starts one).'),
      h('h3', null, 'Tasks (' + live.unfinishedTasks + ' unfinished' + (live.unfinishedTasks > listed ? ', newest ' + listed + ' shown' : '') + ')'),
      h('ul', { class: 'actors', id: 'live-tasks' }, byKind.task.map(actorItem)),
      byKind.schedule.length ? [h('h3', null, 'Schedules (' + byKind.schedule.length + ')'), h('ul', { class: 'actors' }, byKind.schedule.map(actorItem))] : null,
    ]);
    document.getElementById('summary').textContent = live.nodes.length + ' runner(s), ' + live.unfinishedTasks + ' unfinished task(s)';
  }
  /** The state value an event leads to: a slot's run states are children of its 'active' state. */
  function valueOf(event) {
    return event.kind === 'slot' && ['starting', 'busy', 'aborting'].indexOf(event.to) >= 0 ? { active: event.to } : event.to;
  }
  function applyToLive(event) {
    if (!state.live) return;
    var actors = state.live.actors;
    var index = actors.findIndex(function (a) { return a.id === event.actorId; });
    if (event.kind === 'task' && finished.indexOf(event.to) >= 0) {
      if (index >= 0) { actors.splice(index, 1); state.live.unfinishedTasks = Math.max(0, state.live.unfinishedTasks - 1); }
    } else if (index >= 0) {
      actors[index].value = valueOf(event);
    } else if (event.kind === 'task') {
      actors.unshift({ id: event.actorId, kind: 'task', value: event.to, nodeId: event.nodeId, label: '', updatedAt: event.at });
      state.live.unfinishedTasks++;
    }
  }

  // ---- statechart layout --------------------------------------------------------------------------------------
  var charSize = 6.4;
  /** Lay out a statechart: children of each compound state in columns by longest path from its initial state. */
  function layoutChart(chart) {
    var parent = {}, nodes = {};
    (function index(node, up) { nodes[node.id] = node; parent[node.id] = up; node.children.forEach(function (c) { index(c, node.id); }); })(chart.root, null);
    function childUnder(ancestor, id) {
      while (id !== null && parent[id] !== ancestor) id = parent[id];
      return id;
    }
    var boxes = {};
    function measure(node) {
      if (node.children.length === 0) return { w: Math.max(70, node.key.length * charSize + 24), h: 30 };
      var sizes = {};
      node.children.forEach(function (c) { sizes[c.id] = measure(c); });
      var pad = 14, head = 24, gapX = 110, gapY = 46;
      var columns;
      if (node.type === 'parallel') {
        columns = [node.children.map(function (c) { return c.id; })];
      } else {
        var ids = node.children.map(function (c) { return c.id; });
        var out = {};
        ids.forEach(function (id) { out[id] = []; });
        chart.edges.forEach(function (e) {
          var a = childUnder(node.id, e.source), b = childUnder(node.id, e.target);
          if (a && b && a !== b && out[a] && out[a].indexOf(b) < 0) out[a].push(b);
        });
        // Depth-first from the initial state: edges back to a state on the path are loops, not layers.
        var order = [], onPath = {}, seen = {}, forward = {};
        ids.forEach(function (id) { forward[id] = []; });
        (function dfsAll() {
          var starts = [node.initial].concat(ids).filter(Boolean);
          starts.forEach(function visit(id) {
            if (seen[id]) return;
            seen[id] = true; onPath[id] = true; order.push(id);
            out[id].forEach(function (next) { if (!onPath[next]) { forward[id].push(next); visit(next); } });
            onPath[id] = false;
          });
        })();
        var rank = {};
        order.forEach(function (id) { rank[id] = 0; });
        for (var round = 0; round < ids.length; round++) {
          order.forEach(function (id) { forward[id].forEach(function (next) { if (rank[next] < rank[id] + 1) rank[next] = rank[id] + 1; }); });
        }
        columns = [];
        order.forEach(function (id) { (columns[rank[id]] = columns[rank[id]] || []).push(id); });
        columns = columns.filter(Boolean);
      }
      var x = pad, height = 0, place = [];
      columns.forEach(function (column) {
        var width = Math.max.apply(null, column.map(function (id) { return sizes[id].w; }));
        var y = head;
        column.forEach(function (id) { place.push({ id: id, x: x, y: y }); y += sizes[id].h + gapY; });
        height = Math.max(height, y - gapY);
        x += width + gapX;
      });
      var w = Math.max(x - gapX + pad, node.key.length * charSize + 2 * pad);
      node.layout = { place: place, sizes: sizes };
      return { w: w, h: height + pad };
    }
    var rootSize = measure(chart.root);
    (function position(node, x, y, size) {
      boxes[node.id] = { x: x, y: y, w: size.w, h: size.h, node: node };
      if (!node.layout) return;
      node.layout.place.forEach(function (p) { position(nodes[p.id], x + p.x, y + p.y, node.layout.sizes[p.id]); });
    })(chart.root, 0, 0, rootSize);
    return { boxes: boxes, parent: parent, width: rootSize.w, height: rootSize.h };
  }
  /** Where the line from a box's centre towards a point leaves the box. */
  function border(box, px, py) {
    var cx = box.x + box.w / 2, cy = box.y + box.h / 2, dx = px - cx, dy = py - cy;
    if (dx === 0 && dy === 0) return { x: cx, y: box.y };
    var scale = Math.min(Math.abs((box.w / 2) / (dx || 1e-9)), Math.abs((box.h / 2) / (dy || 1e-9)));
    return { x: cx + dx * scale, y: cy + dy * scale };
  }
  function isAncestor(parent, a, b) { for (var id = parent[b]; id; id = parent[id]) if (id === a) return true; return false; }
  function drawChart(chart, value) {
    var layout = layoutChart(chart);
    var active = activeIds(chart.root.id, value);
    var margin = 24;
    var box = { x0: 0, y0: 0, x1: layout.width, y1: layout.height };
    function extend(x, y) { box.x0 = Math.min(box.x0, x); box.y0 = Math.min(box.y0, y); box.x1 = Math.max(box.x1, x); box.y1 = Math.max(box.y1, y); }
    var svg = s('svg', { 'data-machine': chart.machine, class: 'statechart' },
      s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z' }))));
    var states = s('g'), transitions = s('g');
    Object.keys(layout.boxes).forEach(function (id) {
      var box = layout.boxes[id];
      if (id === chart.root.id) return;
      var classes = 'state ' + box.node.type + (active[id] ? ' current' : '');
      var g = s('g', { class: classes, 'data-state-id': id },
        s('rect', { x: box.x, y: box.y, width: box.w, height: box.h, rx: 8 }),
        s('text', { x: box.x + (box.node.children.length ? 8 : box.w / 2), y: box.y + (box.node.children.length ? 15 : box.h / 2 + 4), 'text-anchor': box.node.children.length ? 'start' : 'middle' }, box.node.key));
      var up = layout.boxes[layout.parent[id]];
      if (up && up.node.initial === id) g.appendChild(s('circle', { class: 'initial', cx: box.x - 7, cy: box.y + box.h / 2, r: 4 }));
      states.appendChild(g);
    });
    // One edge per pair of states, naming every event that takes it.
    var pairs = {};
    chart.edges.forEach(function (e) {
      var key = e.source + '>' + e.target;
      (pairs[key] = pairs[key] || { source: e.source, target: e.target, events: [] }).events.push(e.event);
    });
    Object.keys(pairs).forEach(function (key) {
      var e = pairs[key], a = layout.boxes[e.source], b = layout.boxes[e.target];
      if (!a || !b) return;
      var label = e.events.join(', ');
      var path, lx, ly;
      if (e.source === e.target) {
        var x0 = a.x + a.w - 14, y0 = a.y;
        path = 'M' + x0 + ',' + y0 + ' c 6,-26 30,-14 14,4';
        lx = x0 + 16; ly = y0 - 16;
      } else {
        var p0, p1;
        if (isAncestor(layout.parent, e.source, e.target)) p0 = { x: a.x + 8, y: a.y + 20 }; else p0 = border(a, b.x + b.w / 2, b.y + b.h / 2);
        if (isAncestor(layout.parent, e.target, e.source)) p1 = { x: b.x + b.w - 8, y: b.y + 20 }; else p1 = border(b, a.x + a.w / 2, a.y + a.h / 2);
        var mx = (p0.x + p1.x) / 2, my = (p0.y + p1.y) / 2, dx = p1.x - p0.x, dy = p1.y - p0.y, len = Math.sqrt(dx * dx + dy * dy) || 1;
        // Bend every edge to its left: A→B and B→A take different curves, and the longer an edge the wider its
        // arc, so edges that skip columns pass around the states between and their labels part.
        var bend = Math.min(150, 14 + len * 0.22);
        var cx = mx - (dy / len) * bend, cy = my + (dx / len) * bend;
        path = 'M' + p0.x + ',' + p0.y + ' Q' + cx + ',' + cy + ' ' + p1.x + ',' + p1.y;
        lx = 0.25 * p0.x + 0.5 * cx + 0.25 * p1.x; ly = 0.25 * p0.y + 0.5 * cy + 0.25 * p1.y;
      }
      extend(lx - label.length * 2.6, ly - 12);
      extend(lx + label.length * 2.6, ly + 6);
      // The ways out of where the actor is now (from its state or any state enclosing it).
      var available = active[e.source] && e.source !== chart.root.id;
      transitions.appendChild(s('g', { class: 'transition' + (available ? ' available' : ''), 'data-source': e.source, 'data-target': e.target },
        s('path', { d: path, 'marker-end': 'url(#arrow)' }),
        s('text', { x: lx, y: ly, 'text-anchor': 'middle' }, label.length > 48 ? label.slice(0, 47) + '…' : label, s('title', null, label))));
    });
    svg.appendChild(states);
    svg.appendChild(transitions);
    var width = box.x1 - box.x0 + 2 * margin, height = box.y1 - box.y0 + 2 * margin;
    svg.setAttribute('viewBox', (box.x0 - margin) + ' ' + (box.y0 - margin) + ' ' + width + ' ' + height);
    svg.setAttribute('width', String(Math.round(width)));
    return svg;
  }

  // ---- one actor in detail --------------------------------------------------------------------------------------
  var refreshDetail = debounce(function () { loadDetail(); }, 250);
  function loadDetail() {
    var sel = state.selected;
    if (!sel) return Promise.resolve();
    return api('/api/actor?kind=' + encodeURIComponent(sel.kind) + '&id=' + encodeURIComponent(sel.id)).then(function (detail) {
      if (!state.selected || state.selected.id !== detail.id) return;
      state.detail = detail; state.detailError = null;
      renderDetail();
    }, function (error) { state.detail = null; state.detailError = error.message; renderDetail(); });
  }
  function field(name, value) { return value === null || value === undefined || value === '' ? null : [h('dt', null, name), h('dd', { 'data-field': name }, value)]; }
  function taskFields(task) {
    var deps = task.dependsOn.length ? task.dependsOn.map(function (id, i) { return [i ? ', ' : '', taskLink(id)]; }) : null;
    var dependants = task.dependants.length ? task.dependants.map(function (id, i) { return [i ? ', ' : '', taskLink(id)]; }) : null;
    return h('dl', { class: 'fields' },
      field('prompt', task.prompt.length > 400 ? task.prompt.slice(0, 399) + '…' : task.prompt),
      field('priority', task.priority), field('agent', task.agent + (task.model ? ' (' + task.model + ')' : '')),
      field('attempt', task.attempt || null), field('fail reason', task.failReason), field('error', task.error),
      field('cancel reason', task.cancelReason), field('note', task.note), field('depends on', deps), field('dependants', dependants),
      field('created', task.createdAt), field('started', task.startedAt), field('ended', task.completedAt),
      field('duration', duration(task.durationMs)), field('cost', cost(task.costUsd)), field('turns', task.numTurns),
      field('exit code', task.exitCode), field('session', task.sessionId), field('directory', task.workingDirectory),
      field('result', task.result && (task.result.length > 400 ? task.result.slice(0, 399) + '…' : task.result)),
      field('retry of', task.retryOf && taskLink(task.retryOf)), field('resumes', task.parentTaskId && taskLink(task.parentTaskId)));
  }
  function act(action) {
    var id = state.selected.id;
    var button = document.getElementById(action);
    if (button) button.disabled = true;
    var body = action === 'cancel' ? JSON.stringify({ reason: 'cancelled from the inspector' }) : undefined;
    api('/api/tasks/' + encodeURIComponent(id) + '/' + action, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body }).then(function (result) {
      document.getElementById('action-result').textContent = action === 'retry' ? 'queued ' + result.taskId : 'cancelled';
      if (action === 'retry') select('task', result.taskId); else loadDetail();
    }, function (error) {
      var out = document.getElementById('action-result');
      out.textContent = error.message; out.className = 'error';
      if (button) button.disabled = false;
    });
  }
  function renderDetail() {
    var sel = state.selected, detail = state.detail;
    if (!sel) return;
    if (state.detailError) { replace('detail', [h('h2', null, sel.kind + ' ' + sel.id), h('p', { class: 'error' }, state.detailError)]); return; }
    if (!detail) { replace('detail', h('p', { class: 'hint' }, 'loading ' + sel.id + '…')); return; }
    var chart = state.charts[detail.kind];
    var isTask = detail.kind === 'task';
    var done = isTask && finished.indexOf(detail.value) >= 0;
    replace('detail', [
      h('h2', null, detail.kind + ' ', h('span', { class: 'mono' }, detail.id), ' ', badge(detail.value)),
      isTask ? h('div', { class: 'actions' },
        h('button', { id: 'cancel', class: 'danger', disabled: done, onclick: function () { act('cancel'); } }, 'Cancel'),
        h('button', { id: 'retry', disabled: !done, onclick: function () { act('retry'); } }, 'Retry'),
        h('span', { id: 'action-result' })) : null,
      chart ? h('div', { id: 'statechart' }, drawChart(chart, detail.value)) : null,
      isTask ? taskFields(detail.task) : detail.context ? h('pre', { class: 'mono' }, JSON.stringify(detail.context, null, 2)) : null,
      h('h3', null, 'Recent events'),
      detail.events.length ? h('table', { id: 'events' },
        h('thead', null, h('tr', null, ['time', 'type', 'change', 'cause', 'node', 'attempt', 'detail'].map(function (t) { return h('th', null, t); }))),
        h('tbody', null, detail.events.slice().reverse().map(function (e) {
          return h('tr', { 'data-event-id': e.id },
            h('td', { class: 'mono', title: new Date(e.at).toISOString() }, time(e.at)), h('td', null, e.type),
            h('td', null, (e.from && e.from !== e.to ? e.from + ' → ' : '') + e.to), h('td', null, e.cause),
            h('td', { class: 'mono' }, e.nodeId || ''), h('td', null, e.attempt === null ? '' : e.attempt), h('td', { class: 'prompt' }, e.detail || ''));
        }))) : h('p', { class: 'hint' }, 'No events kept for this actor.'),
    ]);
  }

  // ---- dependency graph ---------------------------------------------------------------------------------------
  var refreshGraph = debounce(function () { loadGraph(); }, 300);
  function loadGraph() {
    var sel = state.selected;
    var panel = document.getElementById('graph');
    if (!sel || sel.kind !== 'task') { panel.hidden = true; state.graph = null; return Promise.resolve(); }
    return api('/api/graph?id=' + encodeURIComponent(sel.id)).then(function (graph) {
      if (!state.selected || state.selected.id !== sel.id) return;
      state.graph = graph;
      renderGraph();
    }, function () { panel.hidden = true; });
  }
  function renderGraph() {
    var graph = state.graph, panel = document.getElementById('graph');
    if (!graph || graph.nodes.length < 2) { panel.hidden = true; return; }
    panel.hidden = false;
    var byId = {}, rank = {};
    graph.nodes.forEach(function (n) { byId[n.id] = n; rank[n.id] = 0; });
    // Longest path from the roots: a task sits right of everything it waits on.
    for (var round = 0; round < graph.nodes.length; round++) {
      var moved = false;
      graph.edges.forEach(function (e) { if (rank[e.to] < rank[e.from] + 1) { rank[e.to] = rank[e.from] + 1; moved = true; } });
      if (!moved) break;
    }
    var columns = [];
    graph.nodes.forEach(function (n) { (columns[rank[n.id]] = columns[rank[n.id]] || []).push(n); });
    var w = 210, hh = 42, gapX = 60, gapY = 14, pos = {}, height = 0;
    columns.forEach(function (column, c) {
      (column || []).forEach(function (n, r) { pos[n.id] = { x: c * (w + gapX), y: r * (hh + gapY) }; height = Math.max(height, r * (hh + gapY) + hh); });
    });
    var width = columns.length * (w + gapX) - gapX, m = 10;
    var svg = s('svg', { viewBox: (-m) + ' ' + (-m) + ' ' + (width + 2 * m) + ' ' + (height + 2 * m), width: width + 2 * m, class: 'dag' });
    graph.edges.forEach(function (e) {
      var a = pos[e.from], b = pos[e.to];
      var x0 = a.x + w, y0 = a.y + hh / 2, x1 = b.x, y1 = b.y + hh / 2;
      svg.appendChild(s('path', { class: 'dag-edge c-' + byId[e.from].state, 'data-from': e.from, 'data-to': e.to, 'data-state': byId[e.from].state,
        d: 'M' + x0 + ',' + y0 + ' C' + (x0 + gapX / 2) + ',' + y0 + ' ' + (x1 - gapX / 2) + ',' + y1 + ' ' + x1 + ',' + y1 },
        s('title', null, e.from + ' (' + byId[e.from].state + ') → ' + e.to)));
    });
    graph.nodes.forEach(function (n) {
      var p = pos[n.id];
      var why = n.state === 'waiting' && n.pendingDeps ? 'waits on ' + n.pendingDeps : n.failReason || n.state;
      svg.appendChild(s('g', { class: 'dag-node' + (n.id === state.selected.id ? ' selected' : ''), 'data-task-id': n.id, 'data-state': n.state, onclick: function () { select('task', n.id); } },
        s('rect', { x: p.x, y: p.y, width: w, height: hh, rx: 5 }),
        s('rect', { class: 'bar c-' + n.state, x: p.x, y: p.y, width: 6, height: hh, rx: 2 }),
        s('text', { x: p.x + 12, y: p.y + 16, class: 'mono' }, n.id),
        s('text', { x: p.x + 12, y: p.y + 32 }, (why + ' · ' + n.prompt).length > 34 ? (why + ' · ' + n.prompt).slice(0, 33) + '…' : why + ' · ' + n.prompt),
        s('title', null, n.id + ': ' + n.state + (n.failReason ? ' (' + n.failReason + ')' : '') + '\n' + n.prompt)));
    });
    replace('graph', [h('h2', null, 'Dependency graph (' + graph.nodes.length + ' tasks' + (graph.truncated ? ', truncated' : '') + ')'),
      h('p', { class: 'legend' }, 'An edge goes from a dependency to the task that waits on it, coloured by the dependency\'s state: green done, red failed, dashed not yet.'), svg]);
  }

  // ---- history -------------------------------------------------------------------------------------------------
  var refreshHistory = debounce(function () { if (state.history.index === 0) loadHistory(0); }, 500);
  function loadHistory(index) {
    var cursor = state.history.cursors[index];
    return api('/api/history?limit=50' + (cursor ? '&after=' + encodeURIComponent(cursor) : '')).then(function (page) {
      state.history.index = index;
      state.history.rows = page.rows;
      state.history.next = page.next;
      state.history.cursors[index + 1] = page.next;
      renderHistory();
    }, function (error) { replace('history', h('p', { class: 'error' }, error.message)); });
  }
  function renderHistory() {
    var history = state.history;
    replace('history', [
      h('h2', null, 'Finished tasks'),
      h('table', { id: 'history-table' },
        h('thead', null, h('tr', null, ['status', 'task', 'prompt', 'created', 'duration', 'cost', 'reason'].map(function (t) { return h('th', null, t); }))),
        h('tbody', null, history.rows.map(function (row) {
          return h('tr', { 'data-task-id': row.id, 'data-state': row.state, onclick: function () { select('task', row.id); } },
            h('td', null, badge(row.state)), h('td', { class: 'mono' }, row.id), h('td', { class: 'prompt' }, row.prompt),
            h('td', null, dateTime(row.createdAt)), h('td', null, duration(row.durationMs)), h('td', null, cost(row.costUsd)), h('td', null, row.failReason || ''));
        }))),
      history.rows.length ? null : h('p', { class: 'hint' }, 'No finished tasks yet.'),
      h('div', { class: 'pager' },
        h('button', { id: 'newer', disabled: history.index === 0, onclick: function () { loadHistory(history.index - 1); } }, '◀ newer'),
        h('span', null, 'page ' + (history.index + 1)),
        h('button', { id: 'older', disabled: !history.next, onclick: function () { loadHistory(history.index + 1); } }, 'older ▶')),
    ]);
  }

  // ---- selection and the live stream ---------------------------------------------------------------------------
  function onHash() {
    var match = /^#(task|schedule|slot|supervisor)\/(.+)$/.exec(location.hash);
    state.selected = match ? { kind: match[1], id: decodeURIComponent(match[2]) } : null;
    state.detail = null; state.detailError = null; state.graph = null;
    renderLive();
    renderDetail();
    loadDetail();
    loadGraph();
  }
  function onEvents(events) {
    var graphIds = {};
    (state.graph ? state.graph.nodes : []).forEach(function (n) { graphIds[n.id] = n; });
    var touched = { detail: false, graph: false, history: false };
    events.forEach(function (event) {
      applyToLive(event);
      if (state.selected && state.detail && event.actorId === state.selected.id) {
        state.detail.events.push(event);
        if (state.detail.events.length > 100) state.detail.events.shift();
        if (event.kind === state.detail.kind) state.detail.value = valueOf(event);
        touched.detail = true;
      }
      if (event.kind === 'task' && graphIds[event.actorId]) { graphIds[event.actorId].state = event.to; touched.graph = true; }
      if (event.kind === 'task' && finished.indexOf(event.to) >= 0) touched.history = true;
    });
    renderLive();
    if (touched.detail) { renderDetail(); refreshDetail(); }
    if (touched.graph) { renderGraph(); refreshGraph(); }
    if (touched.history) refreshHistory();
    refreshLive();
  }
  function connect() {
    var status = document.getElementById('connection');
    var source = new EventSource('/api/stream?token=' + encodeURIComponent(token));
    source.addEventListener('open', function () {
      status.textContent = 'live'; status.dataset.connected = 'true';
      // After a (re)connect, what happened meanwhile is read afresh rather than replayed.
      loadLive(); loadDetail(); loadGraph(); refreshHistory();
    });
    source.addEventListener('error', function () { status.textContent = 'reconnecting…'; status.dataset.connected = 'false'; });
    source.addEventListener('events', function (message) { onEvents(JSON.parse(message.data)); });
  }

  api('/api/statecharts').then(function (charts) {
    state.charts = charts;
    window.addEventListener('hashchange', onHash);
    return Promise.all([loadLive(), loadHistory(0)]);
  }).then(function () {
    onHash();
    connect();
    // Heartbeats and the supervisor's own state change without events.
    setInterval(function () { if (!document.hidden) loadLive(); }, 5000);
  }).catch(function (error) { replace('detail', h('p', { class: 'error' }, 'could not load the inspector: ' + error.message)); });
})();
`;
