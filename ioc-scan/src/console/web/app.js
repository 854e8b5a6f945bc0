// The ioc-scan web console: one page, hash routes, the JSON API under /api/v1.
//
// Everything shown comes from IOC files, devices and results, none of it
// trusted: the DOM is built with createElement and textContent only, never
// innerHTML, and links only ever point at this console's own routes.
'use strict';

// ---------------------------------------------------------------- helpers

/** el('tag#id.class', {prop: value, on: {event: fn}}, children...) */
function el(spec, props, ...children) {
  const tag = spec.match(/^[a-z0-9]*/)[0];
  const node = document.createElement(tag || 'div');
  const classes = [];
  for (const [, kind, name] of spec.slice(tag.length).matchAll(/([.#])([^.#]+)/g)) {
    if (kind === '#') node.id = name; else classes.push(name);
  }
  if (classes.length) node.className = classes.join(' ');
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === 'on') {
        for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
      } else if (key === 'dataset') {
        for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
      } else if (key === 'href') {
        node.setAttribute('href', safeHref(value));
      } else if (key in node && key !== 'list') {
        node[key] = value;
      } else {
        node.setAttribute(key, String(value));
      }
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Only this console's own routes and API paths. */
function safeHref(href) {
  const s = String(href);
  return (s.startsWith('#/') || s.startsWith('/api/v1/')) ? s : '#/';
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function toast(message, kind) {
  const t = document.getElementById('toast');
  t.textContent = message;
  t.className = 'toast ' + (kind || 'info');
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || ('HTTP ' + status));
    this.status = status;
    this.body = body;
  }
}

/** Calls the API; `body` is JSON or FormData. Signs out on 401. */
async function api(method, path, body) {
  const headers = { 'Accept': 'application/json', 'X-IOC-Scan-CSRF': '1' };
  const init = { method, headers, credentials: 'same-origin' };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch('/api/v1' + path, init);
  if (response.status === 401) {
    window.location.assign('/login');
    throw new ApiError(401, { message: 'Signed out' });
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

function statusIcon(status) {
  const map = {
    'ioc-detected': ['✖', 'IOC detected', 'bad'],
    'no-ioc-detected': ['✔', 'No IOC detected', 'good'],
    'error': ['!', 'Error', 'warn'],
    'interrupted': ['■', 'Interrupted', 'warn'],
    'running': ['…', 'Running', 'info'],
    'pending': ['◷', 'Waiting for the device', 'info'],
    'dispatched': ['➜', 'Sent to the device', 'info'],
  };
  const [glyph, label, kind] = map[status] || ['?', status, 'info'];
  return el('span.status.' + kind, { title: label, 'aria-label': label, dataset: { status } }, glyph);
}

function section(title, ...children) {
  return el('section.card', null, el('h2', null, title), ...children);
}

function errorBox(error) {
  const box = el('div.error-box', { role: 'alert' }, error.message || String(error));
  const files = error.body && error.body.files;
  if (Array.isArray(files)) box.appendChild(fileReport(files));
  return box;
}

function page(title, ...children) {
  const main = clear(document.getElementById('main'));
  main.appendChild(el('h1', null, title));
  append(main, children);
  return main;
}

// Cached lists for selectors.
async function loadFleet() {
  const [devices, groups] = await Promise.all([api('GET', '/devices'), api('GET', '/groups')]);
  return { devices: devices.devices, groups: groups.groups };
}

/** A <select> of "all devices", each group and each device; values all / g:ID / d:ID. */
function deviceSelector(fleet, selected, id) {
  const select = el('select', { id: id || 'device-selector', 'aria-label': 'Devices' },
    el('option', { value: 'all' }, 'All devices'));
  if (fleet.groups.length) {
    select.appendChild(el('optgroup', { label: 'Administration groups' },
      fleet.groups.map((g) => el('option', { value: 'g:' + g.id }, 'All devices of ' + g.name + ' (' + g.devices + ')'))));
  }
  if (fleet.devices.length) {
    select.appendChild(el('optgroup', { label: 'Devices' },
      fleet.devices.map((d) => el('option', { value: 'd:' + d.id }, d.name))));
  }
  select.value = selected || 'all';
  if (select.selectedIndex < 0) select.value = 'all';
  return select;
}

// ---------------------------------------------------------------- indicators

function supportBadge(item) {
  if (item.support === 'supported') return null;
  return el('span.badge.' + item.support, { title: item.reason || '' },
    item.support === 'invalid' ? 'invalid' : 'unsupported');
}

/** The indicator tree of one IOC, unsupported items marked. */
function iocView(ioc) {
  const rows = ioc.tree.map((node) => {
    const depth = '.depth-' + Math.min(node.depth, 12);
    if (node.kind === 'indicator') {
      return el('li.indicator' + depth, null, el('span.operator', null, node.operator));
    }
    const cls = (node.support === 'supported' ? 'li.item' : 'li.item.unsupported') + depth;
    return el(cls, null,
      el('code.term', null, node.term),
      ' ', el('span.condition', null, (node.negate ? 'not ' : '') + node.condition),
      ' ', el('code.value', null, node.value),
      ' ', supportBadge(node),
      node.reason ? el('span.reason', null, ' ' + node.reason) : null);
  });
  return el('article.ioc', { dataset: { iocId: ioc.id } },
    el('h3', null, ioc.name, ' ', el('span.muted', null, ioc.id)),
    ioc.description ? el('p.description', null, ioc.description) : null,
    el('p.meta.muted', null,
      'From ', el('strong', null, ioc.source), ' · OpenIOC ', ioc.format, ' · ',
      ioc.items + ' item' + (ioc.items === 1 ? '' : 's'),
      ioc.unsupported_items ? ', ' + ioc.unsupported_items + ' not evaluated' : '',
      ioc.authored_by ? ' · by ' + ioc.authored_by : ''),
    el('ul.tree', null, rows));
}

/** Per file: loaded, or its error with line and column. */
function fileReport(files) {
  return el('table.files', null,
    el('thead', null, el('tr', null, el('th', null, 'File'), el('th', null, 'Size'), el('th', null, 'Outcome'))),
    el('tbody', null, files.map((f) => {
      let outcome;
      if (f.error) {
        const where = f.error.line ? 'line ' + f.error.line + ', column ' + f.error.column + ': ' : '';
        outcome = el('span.bad', null, '✖ ' + where + f.error.message);
      } else {
        const warnings = (f.diagnostics || []).length;
        outcome = el('span.good', null, '✔ loaded ' + (f.ioc_id || ''),
          warnings ? el('span.muted', null, ' (' + warnings + ' note' + (warnings === 1 ? '' : 's') + ')') : null);
      }
      return el('tr', { dataset: { file: f.name } }, el('td', null, f.name), el('td', null, (f.size || 0) + ' B'), el('td', null, outcome));
    })));
}

// ---------------------------------------------------------------- pages

// The signed-in person's role: the page offers only what it may do (the
// API refuses the rest anyway).
const ROLE_RANK = { viewer: 0, analyst: 1, admin: 2 };
let myRole = 'viewer';
function may(needed) { return ROLE_RANK[myRole] >= ROLE_RANK[needed]; }

async function devicesPage() {
  const fleet = await loadFleet();
  const admin = may('admin');
  const groupForm = el('form.inline', {
    on: {
      submit: async (e) => {
        e.preventDefault();
        try {
          await api('POST', '/groups', { name: e.target.elements.name.value, description: e.target.elements.description.value });
          toast('Group created');
          route();
        } catch (err) { toast(err.message, 'bad'); }
      },
    },
  }, el('input', { name: 'name', placeholder: 'New group name', required: true }),
  el('input', { name: 'description', placeholder: 'Description' }),
  el('button.primary', { type: 'submit' }, 'Add group'));

  const groups = el('table', null,
    el('thead', null, el('tr', null, el('th', null, 'Group'), el('th', null, 'Description'), el('th', null, 'Devices'), el('th'))),
    el('tbody', null, fleet.groups.map((g) => el('tr', null,
      el('td', null, g.name), el('td', null, g.description), el('td', null, String(g.devices)),
      el('td', null, admin ? el('button.link', {
        type: 'button',
        on: { click: async () => { if (confirm('Delete group ' + g.name + '?')) { await api('DELETE', '/groups/' + g.id); route(); } } },
      }, 'Delete') : null)))));

  const devices = fleet.devices.length === 0
    ? el('p.muted', null, 'No device has enrolled yet. Create an enrollment token in Settings and start an agent with it.')
    : el('table#devices', null,
      el('thead', null, el('tr', null, ['', 'Device', 'Host', 'System', 'Group', 'Last contact', ''].map((h) => el('th', null, h)))),
      el('tbody', null, fleet.devices.map((d) => {
        const group = el('select', {
          'aria-label': 'Group of ' + d.name,
          on: {
            change: async (e) => {
              const v = e.target.value;
              try {
                await api('PATCH', '/devices/' + d.id, { group_id: v === '' ? null : Number(v) });
                toast('Moved ' + d.name);
              } catch (err) { toast(err.message, 'bad'); }
            },
          },
        }, el('option', { value: '' }, '(no group)'), fleet.groups.map((g) => el('option', { value: String(g.id) }, g.name)));
        group.value = d.group_id ? String(d.group_id) : '';
        group.disabled = !admin;
        return el('tr', { dataset: { device: d.name } },
          el('td', null, el('span.dot.' + (d.online ? 'online' : 'offline'), { title: d.online ? 'online' : 'offline' })),
          el('td', null, el('a', { href: '#/results?device=d:' + d.id }, d.name)),
          el('td', null, d.hostname || ''), el('td', null, d.os || ''),
          el('td', null, group), el('td', null, when(d.last_seen)),
          el('td', null, may('analyst') ? el('button.link.lift-isolation', {
            type: 'button',
            title: 'Ask the agent to lift the network isolation of ' + d.name,
            on: {
              click: async () => {
                if (!confirm('Lift the network isolation of ' + d.name + '?')) return;
                try {
                  await api('POST', '/devices/' + d.id + '/lift-isolation');
                  toast('Asked ' + d.name + ' to lift its isolation', 'good');
                } catch (err) { toast(err.message, 'bad'); }
              },
            },
          }, 'Lift isolation') : null, ' ', admin ? el('button.link', {
            type: 'button',
            on: { click: async () => { if (confirm('Remove device ' + d.name + '? Its token stops working; its results stay.')) { await api('DELETE', '/devices/' + d.id); route(); } } },
          }, 'Remove') : null));
      })));
  page('Devices', section('Devices', devices), section('Administration groups', groups, admin ? groupForm : null));
}

async function tasksPage() {
  const { tasks } = await api('GET', '/tasks');
  const fleet = await loadFleet();
  const table = tasks.length === 0
    ? el('p.muted', null, 'No task yet.')
    : el('table#tasks', null,
      el('thead', null, el('tr', null, ['Task', 'IOCs', 'Schedule', 'Response actions', 'Run on', ''].map((h) => el('th', null, h)))),
      el('tbody', null, tasks.map((t) => {
        const target = deviceSelector(fleet, 'all', 'run-target-' + t.id);
        return el('tr', { dataset: { task: t.name } },
          el('td', null, el('a', { href: '#/tasks/' + t.id }, t.name), t.description ? el('div.muted', null, t.description) : null),
          el('td', null, String(t.iocs)),
          el('td', null, t.schedule),
          el('td', null, t.response.apply ? t.response.actions.map((a) => a.action).join(', ') || 'on' : 'off'),
          el('td', null, target),
          el('td.actions', null,
            may('analyst') ? [el('button.primary', { type: 'button', on: { click: () => runTask(t, target.value) } }, 'Run'),
              ' ', el('a.button', { href: '#/tasks/' + t.id + '/edit' }, 'Edit'), ' '] : null,
            el('a.button', { href: '/api/v1/tasks/' + t.id + '/export', download: '' }, 'Export')));
      })));
  const newTask = may('analyst') ? el('p', null, el('a.button.primary', { href: '#/tasks/new', id: 'new-task' }, 'New task')) : null;
  page('Tasks', newTask, section('IOC Scan tasks', table));
}

function runBody(target) {
  if (target === 'all') return { all: true };
  if (target.startsWith('g:')) return { group: Number(target.slice(2)) };
  return { devices: [Number(target.slice(2))] };
}

async function runTask(task, target) {
  try {
    const { jobs } = await api('POST', '/tasks/' + task.id + '/run', runBody(target));
    toast('Asked ' + jobs.length + ' device' + (jobs.length === 1 ? '' : 's') + ' to run ' + task.name, 'good');
    window.location.hash = '#/results' + query({ task: task.id, device: target });
  } catch (err) { toast(err.message, 'bad'); }
}

async function taskPage(id) {
  const [t, fleet] = await Promise.all([api('GET', '/tasks/' + id), loadFleet()]);
  const target = deviceSelector(fleet, 'all', 'run-target');
  const scope = [
    t.scope.critical_areas ? 'critical areas' : null,
    t.scope.ioc_paths ? 'paths named in the IOCs' : null,
    ...t.scope.custom_paths,
  ].filter(Boolean);
  page(t.name,
    t.description ? el('p', null, t.description) : null,
    section('Run',
      el('div.inline', null, may('analyst') ? [target,
        el('button.primary#run-now', { type: 'button', on: { click: () => runTask(t, target.value) } }, 'Run now'),
        el('a.button', { href: '#/tasks/' + t.id + '/edit' }, 'Edit')] : null,
        el('a.button', { href: '#/results?task=' + t.id }, 'Results'))),
    section('Settings', el('dl', null,
      el('dt', null, 'Scan'), el('dd', null, scope.join(', ') || 'nothing'),
      el('dt', null, 'Excluded'), el('dd', null, t.scope.excludes.join(', ') || 'nothing'),
      el('dt', null, 'Response actions'), el('dd', null, t.response.apply ? 'applied: ' + (t.response.actions.map((a) => a.action + (a.seconds ? ' ' + a.seconds + ' s' : '')).join(', ') || 'none chosen') : 'not applied'),
      el('dt', null, 'Live monitoring'), el('dd#monitor-setting', null, monitorText(t.monitor_seconds)),
      el('dt', null, 'Schedule'), el('dd', null, t.schedule + (t.schedule === 'manual' ? '' : ' on ' + targetText(t.targets, fleet))),
      el('dt', null, 'Collection'), el('dd', null, 'version ' + t.collection_version)),
    ),
    section('IOC files',
      el('ul.files', null, t.files.map((f) => el('li', null,
        el('a', { href: '/api/v1/tasks/' + t.id + '/files/' + f.index + '?version=' + t.shown_version, download: '' }, f.name),
        el('span.muted', null, ' ' + f.size + ' B, sha256 ' + f.sha256.slice(0, 16) + '…')))),
      el('a.button', { href: '/api/v1/tasks/' + t.id + '/export?version=' + t.shown_version, download: '', id: 'export' }, 'Export the IOC collection (zip)')),
    section('Indicators (' + t.indicators.length + ')', el('div#indicators', null, t.indicators.map(iocView))));
}

// Live monitoring after the scan: seconds, 0 = off, at most 24 hours.
const MONITOR_UNITS = [['3600', 'hours'], ['60', 'minutes'], ['1', 'seconds']];
const MAX_MONITOR_SECONDS = 24 * 3600;

function monitorText(seconds) {
  if (!seconds) return 'off';
  const [unit, label] = MONITOR_UNITS.find(([u]) => seconds % Number(u) === 0);
  return 'for ' + seconds / Number(unit) + ' ' + label + ' after the scan (new processes, connections, DNS)';
}

function targetText(targets, fleet) {
  if (targets.all) return 'all devices';
  const parts = [];
  for (const g of targets.groups) { const x = fleet.groups.find((y) => y.id === g); parts.push(x ? 'group ' + x.name : 'group ' + g); }
  for (const d of targets.devices) { const x = fleet.devices.find((y) => y.id === d); parts.push(x ? x.name : 'device ' + d); }
  return parts.join(', ') || 'no device';
}

const ACTIONS = [
  ['quarantine', 'Quarantine the file'],
  ['delete', 'Delete the file'],
  ['terminate', 'Terminate the process'],
  ['isolate', 'Isolate the device from the network'],
  ['critical-areas-scan', 'Scan the critical areas'],
];

async function taskEditor(id) {
  const editing = id !== undefined;
  const [t, fleet] = await Promise.all([editing ? api('GET', '/tasks/' + id) : Promise.resolve(null), loadFleet()]);
  const files = el('input#ioc-files', { type: 'file', multiple: true, accept: '.ioc,.xml,application/xml,text/xml' });
  const preview = el('div#preview', null, editing
    ? el('div', null, el('p.muted', null, 'Current IOC files: ' + t.files.map((f) => f.name).join(', ') + '. Choose files to replace them (a new collection version).'), t.indicators.map(iocView))
    : el('p.muted', null, 'Choose IOC files to see the indicators read from them.'));
  files.addEventListener('change', async () => {
    clear(preview);
    if (!files.files.length) return;
    const form = new FormData();
    for (const f of files.files) form.append('file', f, f.name);
    preview.appendChild(el('p.muted', null, 'Reading ' + files.files.length + ' file(s)…'));
    try {
      const p = await api('POST', '/iocs/preview', form);
      clear(preview);
      preview.appendChild(fileReport(p.files));
      if (p.duplicate_ioc_ids.length) {
        preview.appendChild(el('p.error', null, 'The same IOC id is in two files: ' +
          p.duplicate_ioc_ids.map((d) => d.ioc_id + ' (' + d.first + ', ' + d.second + ')').join('; ')));
      }
      const items = p.iocs.reduce((n, i) => n + i.items, 0);
      const unsupported = p.iocs.reduce((n, i) => n + i.unsupported_items, 0);
      preview.appendChild(el('p#preview-summary', null, p.iocs.length + ' IOC(s), ' + items + ' item(s)' + (unsupported ? ', ' + unsupported + ' not evaluated (marked)' : '')));
      preview.appendChild(el('div#indicators', null, p.iocs.map(iocView)));
    } catch (err) {
      clear(preview).appendChild(errorBox(err));
    }
  });

  const name = el('input#task-name', { required: true, value: t ? t.name : '', maxLength: 200 });
  const description = el('textarea#task-description', { rows: 2, value: t ? t.description : '' });
  const critical = el('input#scope-critical', { type: 'checkbox', checked: t ? t.scope.critical_areas : true });
  const iocPaths = el('input#scope-ioc-paths', { type: 'checkbox', checked: t ? t.scope.ioc_paths : true });
  const custom = el('textarea#scope-custom', { rows: 3, placeholder: '/srv/www\n/opt/app', value: t ? t.scope.custom_paths.join('\n') : '' });
  const excludes = el('textarea#scope-excludes', { rows: 2, placeholder: '/proc/**', value: t ? t.scope.excludes.join('\n') : '' });

  const monitorSeconds = t ? t.monitor_seconds : 0;
  const monitorOn = el('input#monitor-on', { type: 'checkbox', checked: monitorSeconds > 0 });
  const [unit0] = MONITOR_UNITS.find(([u]) => monitorSeconds % Number(u) === 0);
  const monitorAmount = el('input#monitor-amount', { type: 'number', min: 1, step: 1, value: monitorSeconds > 0 ? monitorSeconds / Number(unit0) : 10 });
  const monitorUnit = el('select#monitor-unit', null, MONITOR_UNITS.map(([v, l]) => el('option', { value: v }, l)));
  monitorUnit.value = monitorSeconds > 0 ? unit0 : '60';
  const monitorArgs = el('span.inline', null, monitorAmount, monitorUnit);
  const showMonitor = () => { monitorAmount.disabled = monitorUnit.disabled = !monitorOn.checked; };
  monitorOn.addEventListener('change', showMonitor);
  showMonitor();
  const monitorValue = () => {
    if (!monitorOn.checked) return 0;
    const seconds = Math.round(Number(monitorAmount.value) * Number(monitorUnit.value));
    if (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_MONITOR_SECONDS) {
      throw new Error('Live monitoring lasts from 1 second to 24 hours.');
    }
    return seconds;
  };

  const apply = el('input#response-apply', { type: 'checkbox', role: 'switch', checked: t ? t.response.apply : false });
  const chosen = new Map((t ? t.response.actions : []).map((a) => [a.action, a]));
  const actionBoxes = ACTIONS.map(([action, label]) => {
    const box = el('input', { type: 'checkbox', id: 'action-' + action, checked: chosen.has(action), dataset: { action } });
    return el('label.check', null, box, ' ' + label);
  });
  const isolateHours = el('input#isolate-hours', { type: 'number', min: 1, max: 720, value: chosen.has('isolate') ? Math.max(1, Math.round(chosen.get('isolate').seconds / 3600)) : 1 });
  const actions = el('fieldset#actions', { disabled: !apply.checked }, el('legend', null, 'Actions'), actionBoxes,
    el('label', null, 'Isolation lasts (hours) ', isolateHours));
  apply.addEventListener('change', () => { actions.disabled = !apply.checked; });

  const [kind0, arg0] = (t ? t.schedule : 'manual').split(/:(.*)/s);
  const kind = el('select#schedule-kind', null,
    [['manual', 'Manually'], ['once', 'Once, at'], ['every', 'Every'], ['daily', 'Daily, at'], ['agent-start', 'When the agent starts']]
      .map(([v, l]) => el('option', { value: v }, l)));
  kind.value = kind0;
  const onceAt = el('input#schedule-once', { type: 'datetime-local' });
  if (kind0 === 'once' && arg0) { const d = new Date(arg0); onceAt.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }
  const every = el('input#schedule-every', { placeholder: '6h, 30m or 1h30m', value: kind0 === 'every' ? arg0 : '' });
  const daily = el('input#schedule-daily', { type: 'time', value: kind0 === 'daily' ? arg0 : '03:00' });
  const targetAll = el('input', { type: 'radio', name: 'targets', value: 'all', checked: !t || t.targets.all });
  const targetSome = el('input', { type: 'radio', name: 'targets', value: 'some', checked: t && !t.targets.all });
  const targetList = el('select#schedule-targets', { multiple: true, size: 5 },
    fleet.groups.map((g) => el('option', { value: 'g:' + g.id, selected: t && t.targets.groups.includes(g.id) }, 'Group ' + g.name)),
    fleet.devices.map((d) => el('option', { value: 'd:' + d.id, selected: t && t.targets.devices.includes(d.id) }, d.name)));
  const scheduleArgs = el('span');
  const showArgs = () => {
    clear(scheduleArgs);
    if (kind.value === 'once') scheduleArgs.appendChild(onceAt);
    if (kind.value === 'every') scheduleArgs.appendChild(every);
    if (kind.value === 'daily') scheduleArgs.appendChild(daily);
  };
  kind.addEventListener('change', showArgs);
  showArgs();

  const message = el('div#editor-message');
  const save = el('button.primary#save-task', { type: 'submit' }, editing ? 'Save' : 'Create task');

  const settings = () => {
    let schedule = kind.value;
    if (kind.value === 'once') schedule = 'once:' + new Date(onceAt.value).toISOString();
    if (kind.value === 'every') schedule = 'every:' + every.value.trim();
    if (kind.value === 'daily') schedule = 'daily:' + daily.value;
    const picked = Array.from(targetList.selectedOptions).map((o) => o.value);
    const lines = (s) => s.split('\n').map((x) => x.trim()).filter(Boolean);
    return {
      name: name.value.trim(),
      description: description.value,
      scope: { critical_areas: critical.checked, ioc_paths: iocPaths.checked, custom_paths: lines(custom.value), excludes: lines(excludes.value) },
      response: {
        apply: apply.checked,
        actions: actionBoxes.map((l) => l.querySelector('input')).filter((b) => b.checked).map((b) =>
          b.dataset.action === 'isolate' ? { action: 'isolate', seconds: Number(isolateHours.value || 1) * 3600 } : { action: b.dataset.action }),
      },
      schedule,
      monitor_seconds: monitorValue(),
      targets: targetAll.checked
        ? { all: true, groups: [], devices: [] }
        : { all: false, groups: picked.filter((v) => v.startsWith('g:')).map((v) => Number(v.slice(2))), devices: picked.filter((v) => v.startsWith('d:')).map((v) => Number(v.slice(2))) },
    };
  };

  const form = el('form#task-form', {
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(message);
        save.disabled = true;
        try {
          let task;
          if (!editing || files.files.length) {
            if (!files.files.length) throw new Error('Choose at least one IOC file.');
            const body = new FormData();
            body.append('task', new Blob([JSON.stringify(settings())], { type: 'application/json' }));
            for (const f of files.files) body.append('file', f, f.name);
            task = await api(editing ? 'PATCH' : 'POST', editing ? '/tasks/' + id : '/tasks', body);
          } else {
            task = await api('PATCH', '/tasks/' + id, settings());
          }
          toast((editing ? 'Saved ' : 'Created ') + task.name, 'good');
          window.location.hash = '#/tasks/' + task.id;
        } catch (err) {
          message.appendChild(errorBox(err));
        } finally {
          save.disabled = false;
        }
      },
    },
  },
  section('Task', el('label', null, 'Name ', name), el('label', null, 'Description ', description)),
  section('IOC files', el('label', null, 'OpenIOC 1.0 / 1.1 files ', files), preview),
  section('Scan scope',
    el('label.check', null, critical, ' Critical areas (system binaries, autostart, temporary folders…)'),
    el('label.check', null, iocPaths, ' Paths named in the IOCs'),
    el('label', null, 'Custom paths (one per line) ', custom),
    el('label', null, 'Exclusions (glob patterns, one per line) ', excludes)),
  section('Live monitoring',
    el('div.inline', null, el('label.check', null, monitorOn, ' After the scan, monitor live for '), monitorArgs),
    el('p.muted', null, 'New processes, connections and DNS answers, through the eBPF sensors (root and BPF on the device). With the response switch on, terminate also kills matching programs as they start.')),
  section('Response', el('label.check.switch', null, apply, ' Apply response actions when an IOC is detected'), actions),
  section('Schedule', el('div.inline', null, kind, scheduleArgs),
    el('div', null, el('label.check', null, targetAll, ' On all devices'), el('label.check', null, targetSome, ' On these groups and devices:'), targetList)),
  el('div.inline', null, save, el('a.button', { href: editing ? '#/tasks/' + id : '#/tasks' }, 'Cancel')),
  message);
  page(editing ? 'Edit ' + t.name : 'New task', form);
}

let resultsTimer = null;

async function resultsPage(params) {
  const [fleet, { tasks }] = await Promise.all([loadFleet(), api('GET', '/tasks')]);
  const taskSel = el('select#task-filter', { 'aria-label': 'Task' }, el('option', { value: '' }, 'All tasks'),
    tasks.map((t) => el('option', { value: String(t.id) }, t.name)));
  taskSel.value = params.get('task') || '';
  const devSel = deviceSelector(fleet, params.get('device') || 'all');
  const statusSel = el('select#status-filter', { 'aria-label': 'Status' },
    [['', 'Any result'], ['ioc-detected', 'IOC detected'], ['no-ioc-detected', 'No IOC detected'], ['error', 'Error'], ['interrupted', 'Interrupted']]
      .map(([v, l]) => el('option', { value: v }, l)));
  statusSel.value = params.get('status') || '';
  const since = el('input#since-filter', { type: 'date', 'aria-label': 'Since', value: params.get('since') || '' });
  const go = () => {
    window.location.hash = '#/results' + query({ task: taskSel.value, device: devSel.value === 'all' ? '' : devSel.value, status: statusSel.value, since: since.value });
  };
  for (const s of [taskSel, devSel, statusSel, since]) s.addEventListener('change', go);
  const body = el('tbody');
  const pending = el('p#pending.muted');
  const table = el('table#results', null,
    el('thead', null, el('tr', null, ['', 'Device', 'Date and time', 'Task', 'Result', ''].map((h) => el('th', null, h)))), body);
  page('Results', el('div.filters', null,
    el('label', null, 'Task ', taskSel), el('label', null, 'Device ', devSel), el('label', null, 'Result ', statusSel), el('label', null, 'Since ', since)),
  section('Runs', pending, table));

  const device = devSel.value;
  const q = { task: taskSel.value, status: statusSel.value, since: since.value, limit: 500 };
  if (device.startsWith('g:')) q.group = device.slice(2);
  if (device.startsWith('d:')) q.device = device.slice(2);
  const refresh = async () => {
    const [{ results }, jobs] = await Promise.all([
      api('GET', '/results' + query(q)),
      api('GET', '/jobs' + query({ task: q.task, open: true, limit: 1000 })),
    ]);
    clear(body);
    if (!results.length) body.appendChild(el('tr', null, el('td.muted', { colSpan: 6 }, 'No results yet.')));
    for (const r of results) {
      body.appendChild(el('tr', { dataset: { run: r.id, device: r.device, status: r.status } },
        el('td', null, statusIcon(r.status)),
        el('td', null, r.device),
        el('td', null, when(r.started_at)),
        el('td', null, r.task_name),
        el('td', null, r.summary),
        el('td', null, el('a.details', { href: '#/results/' + r.id }, 'Details'))));
    }
    const waiting = jobs.jobs.filter((j) => !q.device || String(j.device_id) === q.device);
    pending.textContent = waiting.length ? waiting.length + ' run(s) waiting for their device: ' + waiting.map((j) => j.device).join(', ') : '';
  };
  await refresh();
  resultsTimer = setInterval(() => { refresh().catch(() => {}); }, 5000);
}

/** An object (from a detection) as a small key/value table. */
function objectView(obj) {
  if (obj === null || typeof obj !== 'object') return el('code', null, JSON.stringify(obj));
  return el('table.kv', null, el('tbody', null, Object.entries(obj).map(([k, v]) =>
    el('tr', null, el('th', null, k), el('td', null, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))))));
}

async function alertPage(id) {
  const { run, detections } = await api('GET', '/results/' + id);
  const counts = run.counts.map((c) => c.name + ' ' + c.value).join(', ');
  page('Run ' + run.id + ' on ' + run.device,
    section('Run', el('dl', null,
      el('dt', null, 'Result'), el('dd', null, statusIcon(run.status), ' ', run.summary),
      el('dt', null, 'Task'), el('dd', null, el('a', { href: '#/tasks/' + run.task_id }, run.task_name), ' (collection version ' + run.collection_version + ')'),
      el('dt', null, 'Device'), el('dd', null, run.device),
      el('dt', null, 'Started'), el('dd', null, when(run.started_at)),
      el('dt', null, 'Ended'), el('dd', null, when(run.ended_at)),
      el('dt', null, 'Trigger'), el('dd', null, run.trigger),
      counts ? el('dt', null, 'Counts') : null, counts ? el('dd', null, counts) : null,
      run.error ? el('dt', null, 'Error') : null, run.error ? el('dd.bad', null, run.error) : null)),
    section('Alert details (' + detections.length + ')', detections.length === 0
      ? el('p.muted', null, 'Nothing was detected.')
      : el('div#detections', null, detections.map((d) => el('article.detection', null,
        el('h3', null, d.ioc_name, ' ', el('span.muted', null, d.ioc_id)),
        d.ioc_description ? el('p.description', null, d.ioc_description) : null,
        d.ioc_source ? el('p.muted', null, 'From ' + d.ioc_source) : null,
        el('h4', null, 'Matched items'),
        el('ul.tree', null, d.matched_items.map((i) => el('li.item', null,
          el('code.term', null, i.term || i.id), ' ', el('span.condition', null, (i.negate ? 'not ' : '') + (i.condition || '')), ' ', el('code.value', null, i.value || '')))),
        el('h4', null, 'Object'), objectView(d.object),
        el('h4', null, 'Response actions'),
        d.responses.length === 0 ? el('p.muted', null, 'None applied.') : el('table', null,
          el('thead', null, el('tr', null, el('th', null, 'Action'), el('th', null, 'Outcome'), el('th', null, 'Detail'))),
          el('tbody', null, d.responses.map((r) => el('tr', null, el('td', null, r.action), el('td', null, r.outcome), el('td', null, r.detail || ''))))))))));
}

async function settingsPage() {
  const admin = may('admin');
  // Others see their own API tokens only.
  const [{ api_tokens, enrollment_tokens }, { users }, fleet] = await Promise.all([api('GET', '/tokens'),
    admin ? api('GET', '/users') : { users: [] }, admin ? loadFleet() : { groups: [] }]);
  const shown = el('div#new-token');
  const showToken = (title, token, hint) => {
    clear(shown).appendChild(el('div.notice', null, el('strong', null, title), el('p', null, 'Shown once; copy it now:'),
      el('code.token', null, token), hint ? el('p.muted', null, hint) : null));
  };
  const group = el('select', { name: 'group' }, el('option', { value: '' }, '(no group)'), fleet.groups.map((g) => el('option', { value: String(g.id) }, g.name)));
  const enrollForm = el('form.inline', {
    on: {
      submit: async (e) => {
        e.preventDefault();
        const f = e.target.elements;
        const t = await api('POST', '/enrollment-tokens', { name: f.name.value, group_id: f.group.value ? Number(f.group.value) : null, uses: f.uses.value ? Number(f.uses.value) : null, expires_in_hours: f.hours.value ? Number(f.hours.value) : null });
        showToken('Enrollment token', t.token, 'On each device: ioc-scan agent --console ' + window.location.origin + ' --token ' + t.token + ' --device-name NAME');
      },
    },
  }, el('input', { name: 'name', placeholder: 'Label' }), group,
  el('input', { name: 'uses', type: 'number', min: 1, placeholder: 'Uses (any)' }),
  el('input', { name: 'hours', type: 'number', min: 1, placeholder: 'Valid hours (forever)' }),
  el('button.primary', { type: 'submit' }, 'Create enrollment token'));
  const apiForm = el('form.inline', {
    on: { submit: async (e) => { e.preventDefault(); const t = await api('POST', '/tokens', { name: e.target.elements.name.value }); showToken('API token', t.token, 'Send it as: Authorization: Bearer TOKEN'); } },
  }, el('input', { name: 'name', placeholder: 'Label' }), el('button.primary', { type: 'submit' }, 'Create API token'));
  const tokenTable = (list) => el('table', null, el('tbody', null, list.map((t) => el('tr', null,
    el('td', null, t.name || '(no label)'), el('td', null, when(t.created_at)), el('td', null, t.expires_at ? 'until ' + when(t.expires_at) : ''),
    el('td', null, t.kind.uses_left !== undefined && t.kind.uses_left !== null ? t.kind.uses_left + ' use(s) left' : ''),
    el('td', null, el('button.link', { type: 'button', on: { click: async () => { await api('DELETE', '/tokens/' + t.id); route(); } } }, 'Revoke'))))));
  const userForm = el('form.inline', {
    on: {
      submit: async (e) => {
        e.preventDefault();
        const f = e.target.elements;
        try { await api('POST', '/users', { name: f.name.value, password: f.password.value, role: f.role.value }); toast('User created', 'good'); route(); } catch (err) { toast(err.message, 'bad'); }
      },
    },
  }, el('input', { name: 'name', placeholder: 'User name', required: true }), el('input', { name: 'password', type: 'password', placeholder: 'Password (8+ characters)', required: true }),
  roleSelect('viewer', { name: 'role' }), el('button.primary', { type: 'submit' }, 'Add user'));
  const userRow = (u) => el('li', null, u.name + ' ',
    roleSelect(u.role, { 'aria-label': 'Role of ' + u.name, on: { change: async (e) => { try { await api('PATCH', '/users/' + u.id, { role: e.target.value }); toast('Role changed'); } catch (err) { toast(err.message, 'bad'); route(); } } } }),
    ' ', el('button.link', { type: 'button', on: { click: async () => { if (confirm('Delete user ' + u.name + '? Their sessions and API tokens end.')) { try { await api('DELETE', '/users/' + u.id); route(); } catch (err) { toast(err.message, 'bad'); } } } } }, 'Delete'));
  page('Settings', shown,
    admin ? section('Enrollment tokens', tokenTable(enrollment_tokens), enrollForm) : null,
    section('API tokens', tokenTable(api_tokens), apiForm),
    admin ? section('Users', el('ul', null, users.map(userRow)), userForm) : null);
}

function roleSelect(selected, props) {
  const select = el('select', props, Object.keys(ROLE_RANK).map((r) => el('option', { value: r }, r)));
  select.value = selected;
  return select;
}

// ---------------------------------------------------------------- routing

async function route() {
  if (resultsTimer) { clearInterval(resultsTimer); resultsTimer = null; }
  const hash = window.location.hash || '#/results';
  const [path, search] = hash.slice(1).split('?');
  const params = new URLSearchParams(search || '');
  const parts = path.split('/').filter(Boolean);
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === parts[0]);
  try {
    if (parts[0] === 'devices') await devicesPage();
    else if (parts[0] === 'tasks' && parts[1] === 'new') await taskEditor();
    else if (parts[0] === 'tasks' && parts[1] && parts[2] === 'edit') await taskEditor(Number(parts[1]));
    else if (parts[0] === 'tasks' && parts[1]) await taskPage(Number(parts[1]));
    else if (parts[0] === 'tasks') await tasksPage();
    else if (parts[0] === 'results' && parts[1]) await alertPage(Number(parts[1]));
    else if (parts[0] === 'settings') await settingsPage();
    else await resultsPage(params);
  } catch (err) {
    if (err.status !== 401) page('Something went wrong', errorBox(err));
  }
}

async function start() {
  document.getElementById('signout').addEventListener('click', async () => {
    try { await api('DELETE', '/session'); } finally { window.location.assign('/login'); }
  });
  try {
    const me = await api('GET', '/session');
    document.getElementById('who').textContent = me.user.name;
    document.getElementById('who').title = me.user.role;
    myRole = me.user.role in ROLE_RANK ? me.user.role : 'viewer';
  } catch (_) { return; }
  window.addEventListener('hashchange', route);
  await route();
}

start();
