/* The committee console: the new-campaign form, live dashboard, campaign settings, review queue,
   fraud desk with the held votes, and the vote browser.
   Plain ES2015, no framework. Every read and write goes through the /api/v1 JSON API with the
   staff cookie (ZM.api adds the CSRF header). Data is always put into the page as text. */
(function () {
  'use strict';
  var ZM = window.ZM;
  var DATA = ZM && ZM.data('console-data');
  if (!DATA) return;
  var el = ZM.el;
  var svg = ZM.svg;
  var showError = ZM.showError;
  var busy = ZM.busy;
  var $ = function (id) { return document.getElementById(id); };
  var SLUG = encodeURIComponent(DATA.slug);
  var ADMIN = '/api/v1/admin/campaigns/' + SLUG;
  var TZ = DATA.timezone || 'Asia/Shanghai';

  // Phases, nomination statuses, trail actions, roles, detector rules, severities, flag statuses,
  // committee decisions and media statuses come from the server (campaigns.labels,
  // nominations.labels, voting.labels, media.labels), so every page says them with the same words.
  var LABELS = DATA.labels || {};
  var PHASES = LABELS.phases || {};
  var STATUS = LABELS.statuses || {};
  var ACTIONS = LABELS.actions || {};
  var ROLES = LABELS.roles || {};
  var RULES = LABELS.rules || {};
  var SEVERITY = LABELS.severities || {};
  var FLAG_STATUS = LABELS.flag_statuses || {};
  var DECISIONS = LABELS.decisions || {};
  var MEDIA_STATUS = LABELS.media_statuses || {};
  var COLORS = ['#c8102e', '#1d4ed8', '#15803d', '#b45309', '#7c3aed', '#0f766e', '#be185d', '#475569'];

  /* ---------------------------------------------------------------- time and numbers */

  /* "2026-05-01 08:30" in the campaign's time zone. */
  function fmtTime(value, withSeconds) {
    if (value === null || value === undefined || value === '') return '';
    var d = value instanceof Date ? value : new Date(value);
    if (isNaN(d.getTime())) return String(value);
    var p = ZM.partsIn(d, TZ);
    return p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute +
      (withSeconds ? ':' + p.second : '');
  }

  function fmtClock(d, withSeconds) {
    var p = ZM.partsIn(d, TZ);
    return p.hour + ':' + p.minute + (withSeconds ? ':' + p.second : '');
  }

  function num(n) {
    if (n === null || n === undefined) return '—';
    return Number(n).toLocaleString('zh-CN');
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '无';
    if (seconds < 60) return Math.round(seconds) + ' 秒';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' 分 ' + Math.round(seconds % 60) + ' 秒';
    return Math.floor(seconds / 3600) + ' 小时 ' + Math.floor((seconds % 3600) / 60) + ' 分';
  }

  /* ---------------------------------------------------------------- small UI pieces */

  function show(node, visible) { if (node) node.hidden = !visible; }

  function setText(id, text) { var node = $(id); if (node) node.textContent = text; }

  function badge(text, kind) { return el('span', { class: 'badge ' + (kind || '') }, [text]); }

  function table(headers, rows, attrs) {
    return el('table', attrs || { class: 'grid' }, [
      el('thead', {}, [el('tr', {}, headers.map(function (h) { return el('th', {}, [h]); }))]),
      el('tbody', {}, rows)
    ]);
  }

  function empty(text) { return el('p', { class: 'muted small' }, [text]); }

  /* A confirmation dialog, optionally asking for a reason. Resolves to the reason ('' when none
     is asked) or null when cancelled. */
  function dialog(opts) {
    return new Promise(function (resolve) {
      var reason = opts.reason ? el('textarea', {
        id: 'dialog-reason', rows: '3', maxlength: '1000', 'aria-label': opts.reason
      }) : null;
      var error = el('p', { class: 'field-error', id: 'dialog-error', role: 'alert', hidden: true });
      var cancel = el('button', { type: 'button', class: 'btn', id: 'dialog-cancel' }, ['取消']);
      var confirm = el('button', {
        type: 'button', class: 'btn ' + (opts.danger ? 'danger' : 'primary'), id: 'dialog-confirm'
      }, [opts.confirm || '确定']);
      var box = el('div', { class: 'dialog-backdrop', id: 'console-dialog' }, [
        el('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'dialog-title' }, [
          el('h2', { id: 'dialog-title' }, [opts.title]),
          opts.message ? el('p', { class: 'dialog-message' }, [opts.message]) : null,
          reason ? el('label', { class: 'form' }, [opts.reason, reason]) : null,
          error,
          el('div', { class: 'actions' }, [cancel, confirm])
        ])
      ]);
      function close(value) {
        document.removeEventListener('keydown', onKey);
        if (box.parentNode) box.parentNode.removeChild(box);
        resolve(value);
      }
      function onKey(e) { if (e.key === 'Escape') close(null); }
      cancel.addEventListener('click', function () { close(null); });
      box.addEventListener('click', function (e) { if (e.target === box) close(null); });
      confirm.addEventListener('click', function () {
        var text = reason ? reason.value.trim() : '';
        if (reason && opts.reasonRequired && !text) {
          showError(error, '请填写' + opts.reason);
          reason.focus();
          return;
        }
        close(text);
      });
      document.addEventListener('keydown', onKey);
      document.body.appendChild(box);
      (reason || confirm).focus();
    });
  }

  /* ---------------------------------------------------------------- form errors */

  function clearFieldErrors(root, name) {
    ZM.qsa('.field-error.for-field', root).forEach(function (n) {
      if (!name || n.getAttribute('data-for') === name) n.parentNode.removeChild(n);
    });
    ZM.qsa('.invalid', root).forEach(function (n) {
      if (!name || n.getAttribute('name') === name) n.classList.remove('invalid');
    });
  }

  function fieldInput(root, name) {
    var found = null;
    ZM.qsa('[name]', root).forEach(function (n) { if (!found && n.getAttribute('name') === name) found = n; });
    return found;
  }

  /* The words a field's <label> starts with (its text before the input). */
  function labelOf(input) {
    var label = input && input.closest('label');
    if (!label) return '';
    for (var node = label.firstChild; node; node = node.nextSibling) {
      if (node.nodeType === 3 && node.textContent.trim()) return node.textContent.trim();
    }
    return '';
  }

  function fieldError(root, name, message) {
    var input = fieldInput(root, name);
    if (!input) return false;
    clearFieldErrors(root, name);
    input.classList.add('invalid');
    var label = input.closest('label') || input.parentNode;
    label.appendChild(el('span', { class: 'field-error for-field', 'data-for': name }, [message]));
    return true;
  }

  /* marshmallow's English messages in Chinese (messages already in Chinese pass unchanged). */
  function zhMessage(message, label) {
    message = String(message);
    if (/[\u4e00-\u9fff]/.test(message)) return message;
    label = label || '';
    var m;
    if (/Missing data|may not be null/i.test(message)) return '请填写' + (label || '此项');
    if (/Unknown field/i.test(message)) return (label || '此项') + '不是可以设置的项目';
    if (/valid integer/i.test(message)) return label + '请填写整数';
    if (/valid (aware |naive )?datetime/i.test(message)) return label + '请填写有效的时间';
    if (/valid boolean/i.test(message)) return label + '只能是“是”或“否”';
    if (/one of/i.test(message)) return '请从列表中选择' + label;
    if ((m = /length must be between (\d+) and (\d+)/i.exec(message))) return label + '应为 ' + m[1] + '–' + m[2] + ' 个字';
    if ((m = /shorter than minimum length (\d+)/i.exec(message))) return label + '至少 ' + m[1] + ' 个字';
    if ((m = /longer than maximum length (\d+)/i.exec(message))) return label + '最多 ' + m[1] + ' 个字';
    if ((m = /greater than or equal to (-?[\d.]+) and less than or equal to (-?[\d.]+)/i.exec(message))) {
      return label + '应在 ' + m[1] + '–' + m[2] + ' 之间';
    }
    if ((m = /greater than or equal to (-?[\d.]+)/i.exec(message))) return label + '不能小于 ' + m[1];
    if ((m = /less than or equal to (-?[\d.]+)/i.exec(message))) return label + '不能大于 ' + m[1];
    return label + '填写的内容不符合要求';
  }

  /* details.fields may nest (rules.votes_per_day) and hold lists or dicts of messages. Each lands
     on its input (in Chinese); what has no input comes back, to be shown above the button. */
  function applyFieldErrors(root, fields, prefix) {
    var unplaced = [];
    Object.keys(fields || {}).forEach(function (key) {
      var value = fields[key];
      var name = prefix ? prefix + '.' + key : key;
      if (Array.isArray(value)) {
        var input = key === '_schema' ? null : fieldInput(root, name);
        var text = value.map(function (v) { return zhMessage(v, labelOf(input)); }).join('；');
        if (!input || !fieldError(root, name, text)) unplaced.push(key === '_schema' ? text : name + '：' + text);
      } else if (value && typeof value === 'object') {
        unplaced = unplaced.concat(applyFieldErrors(root, value, name));
      } else if (value) {
        unplaced.push(String(value));
      }
    });
    return unplaced;
  }

  function intOrNull(v) { return v === '' || v === null || v === undefined ? null : parseInt(v, 10); }

  function focusFirstInvalid(root) {
    var first = ZM.qs('.invalid', root);
    if (first) first.focus();
  }

  /* ---------------------------------------------------------------- SVG charts */

  /* A rounded top for the y axis and its step: whole numbers, 4–6 gridlines. */
  function niceScale(max) {
    var best = null;
    [4, 5, 6].forEach(function (ticks) {
      var raw = Math.max(max, 1) / ticks;
      var pow = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
      var step = [1, 2, 5, 10].map(function (m) { return m * pow; })
        .filter(function (s) { return s >= raw && s >= 1 && Math.round(s) === s; })[0] || Math.ceil(raw);
      var top = step * Math.ceil(Math.max(max, 1) / step);
      if (!best || top < best.top) best = { top: top, step: step };
    });
    return best;
  }

  function niceTimeStep(spanMs, maxTicks) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map(function (m) { return m * 60000; });
    for (var i = 0; i < steps.length; i++) if (spanMs / steps[i] <= maxTicks) return steps[i];
    return steps[steps.length - 1];
  }

  /* Axes, grid and labels shared by both charts; returns the scales. */
  function frame(root, opts) {
    var W = opts.width, H = opts.height, L = 48, R = 12, T = 24, B = 30;
    var pw = W - L - R, ph = H - T - B;
    var x0 = opts.xStart, x1 = Math.max(opts.xEnd, opts.xStart + 60000);
    var scale = niceScale(opts.yMax);
    var yMax = scale.top;
    var sx = function (t) { return L + (t - x0) / (x1 - x0) * pw; };
    var sy = function (v) { return T + ph - v / yMax * ph; };
    var grid = svg('g', { class: 'axis' });
    for (var v = 0; v <= yMax; v += scale.step) {
      var y = sy(v);
      grid.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, stroke: v ? '#eef0f3' : '#9ca3af', 'stroke-width': 1 }));
      grid.appendChild(svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#6b7280' }, [num(v)]));
    }
    grid.appendChild(svg('line', { x1: L, x2: L, y1: T, y2: T + ph, stroke: '#9ca3af', 'stroke-width': 1 }));
    var step = niceTimeStep(x1 - x0, Math.max(2, Math.floor(pw / 80)));
    var offset = ZM.tzOffsetMs(x0, TZ);
    var first = Math.ceil((x0 + offset) / step) * step - offset;
    for (var t = first; t <= x1; t += step) {
      var x = sx(t);
      grid.appendChild(svg('line', { x1: x, x2: x, y1: T + ph, y2: T + ph + 4, stroke: '#9ca3af' }));
      var d = new Date(t);
      var label = step >= 86400000 ? fmtTime(d).slice(5, 10) : fmtClock(d);
      var anchor = x > W - R - 16 ? 'end' : (x < L + 16 ? 'start' : 'middle');
      grid.appendChild(svg('text', { x: x, y: T + ph + 18, 'text-anchor': anchor, 'font-size': 11, fill: '#6b7280' }, [label]));
    }
    if (opts.yLabel) {
      grid.appendChild(svg('text', { x: L - 6, y: 10, 'text-anchor': 'end', 'font-size': 11, fill: '#6b7280' }, [opts.yLabel]));
    }
    root.appendChild(grid);
    return { sx: sx, sy: sy, T: T, B: B, L: L, R: R, pw: pw, ph: ph, x0: x0, x1: x1 };
  }

  function chartRoot(container, width, height, label) {
    ZM.clear(container);
    var root = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width: '100%', role: 'img', 'aria-label': label,
      preserveAspectRatio: 'xMidYMid meet', class: 'chart-svg'
    });
    container.appendChild(root);
    return root;
  }

  /* series: [{label, color, points: [{t, v}]}] */
  function lineChart(container, series, xStart, xEnd, yLabel) {
    var W = 760, H = 260;
    var yMax = 0;
    series.forEach(function (s) { s.points.forEach(function (p) { if (p.v > yMax) yMax = p.v; }); });
    var root = chartRoot(container, W, H, '每分钟票数折线图');
    var f = frame(root, { width: W, height: H, xStart: xStart, xEnd: xEnd, yMax: yMax, yLabel: yLabel });
    series.forEach(function (s, i) {
      var pts = s.points.filter(function (p) { return p.t >= f.x0 && p.t <= f.x1; });
      if (!pts.length) return;
      var color = s.color || COLORS[i % COLORS.length];
      root.appendChild(svg('polyline', {
        points: pts.map(function (p) { return f.sx(p.t).toFixed(1) + ',' + f.sy(p.v).toFixed(1); }).join(' '),
        fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-linejoin': 'round',
        'data-series': s.code || s.label
      }, [svg('title', {}, [s.label])]));
      var last = pts[pts.length - 1];
      root.appendChild(svg('circle', { cx: f.sx(last.t), cy: f.sy(last.v), r: 3, fill: color }, [
        svg('title', {}, [s.label + ' ' + fmtClock(new Date(last.t)) + '：' + num(Math.round(last.v)) + ' 票/分钟'])
      ]));
    });
    var legend = el('div', { class: 'legend' }, series.map(function (s, i) {
      var swatch = el('span', { class: 'swatch' });
      swatch.style.background = s.color || COLORS[i % COLORS.length];
      var lastPoint = s.points.length ? s.points[s.points.length - 1].v : 0;
      return el('span', { class: 'legend-item' }, [swatch, s.label + '（最近一分钟 ' + num(Math.round(lastPoint)) + '）']);
    }));
    container.appendChild(legend);
  }

  /* bars: [{t (ms, start of the minute), v}] */
  function barChart(container, bars, label) {
    var W = 560, H = 200;
    if (!bars.length) { ZM.clear(container).appendChild(empty('没有分钟数据。')); return; }
    var x0 = bars[0].t, x1 = bars[bars.length - 1].t + 60000;
    var yMax = 0;
    bars.forEach(function (b) { if (b.v > yMax) yMax = b.v; });
    var root = chartRoot(container, W, H, label);
    var f = frame(root, { width: W, height: H, xStart: x0, xEnd: x1, yMax: yMax, yLabel: '票/分钟' });
    var width = Math.max(1, f.pw / ((f.x1 - f.x0) / 60000) - 1);
    bars.forEach(function (b) {
      var y = f.sy(b.v);
      root.appendChild(svg('rect', {
        x: f.sx(b.t).toFixed(1), y: y.toFixed(1), width: width.toFixed(1),
        height: Math.max(0, f.T + f.ph - y).toFixed(1), fill: '#c8102e', class: 'bar'
      }, [svg('title', {}, [fmtTime(new Date(b.t)) + '：' + num(b.v) + ' 票'])]));
    });
  }

  /* ---------------------------------------------------------------- nominees */

  function nomineeName(number) {
    var n = (DATA.nominees || {})[number];
    return n ? n.name : '';
  }

  function categoryOf(number) {
    var n = (DATA.nominees || {})[number];
    if (n) return n.category;
    var cats = DATA.categories || [];
    for (var i = 0; i < cats.length; i++) {
      if (number && number.indexOf(cats[i].prefix) === 0 && /^\d+$/.test(number.slice(cats[i].prefix.length))) {
        return cats[i].code;
      }
    }
    return null;
  }

  function categoryName(code) {
    var cats = DATA.categories || [];
    for (var i = 0; i < cats.length; i++) if (cats[i].code === code) return cats[i].name;
    return code || '';
  }

  /* ================================================================ dashboard */

  function dashboard() {
    var state = { lastOk: null, busy: false, trendAt: 0, trend: null };
    var errorBox = $('dash-error');

    function failed(res) {
      var err = ZM.errorOf(res);
      var when = state.lastOk ? '，以下为 ' + fmtClock(state.lastOk, true) + ' 的数据' : '';
      var message = res.status === 503
        ? '计票服务暂时无法读取（Redis 无响应）' + when + '，稍后自动重试。'
        : err.message + when + '。';
      showError(errorBox, message);
    }

    function renderTally(tally) {
      setText('total-valid', num(tally.totals.valid));
      setText('total-pending', num(tally.totals.pending));
      setText('total-invalid', num(tally.totals.invalid));
      setText('total-undrained', num(tally.undrained));
      var diffs = tally.differences || [];
      setText('health-differences', diffs.length
        ? diffs.length + ' 位候选人的实时计数与库内不同' + (tally.undrained ? '（有 ' + num(tally.undrained) + ' 票尚未入库）' : '，请运行对账（votes reconcile）')
        : '实时计数与库内一致');
      var box = $('tally-table');
      ZM.clear(box);
      var groups = {};
      (tally.nominees || []).forEach(function (n) {
        var code = n.category || categoryOf(n.nominee) || '';
        (groups[code] = groups[code] || []).push(n);
      });
      var codes = (DATA.categories || []).map(function (c) { return c.code; });
      Object.keys(groups).forEach(function (c) { if (codes.indexOf(c) < 0) codes.push(c); });
      var any = false;
      codes.forEach(function (code) {
        var list = groups[code];
        if (!list) return;
        any = true;
        list.sort(function (a, b) { return b.valid - a.valid || (a.nominee < b.nominee ? -1 : 1); });
        box.appendChild(el('h3', {}, [categoryName(code)]));
        box.appendChild(table(['编号', '姓名', '有效票', '待审', '无效', '实时计数'], list.map(function (n) {
          var differs = n.live_valid !== n.valid;
          return el('tr', { 'data-testid': 'tally-' + n.nominee, class: differs ? 'differs' : '' }, [
            el('td', {}, [n.nominee]),
            el('td', {}, [nomineeName(n.nominee)]),
            el('td', { class: 'num valid' }, [num(n.valid)]),
            el('td', { class: 'num' }, [num(n.pending)]),
            el('td', { class: 'num' }, [num(n.invalid)]),
            el('td', { class: 'num', title: differs ? '与库内有效票不同（通常是尚未入库的票）' : '' }, [num(n.live_valid)])
          ]);
        }), { class: 'grid compact' }));
      });
      if (!any) box.appendChild(empty('还没有入库的投票。'));
    }

    function renderHealth(h) {
      var age = h.oldest_undrained_age_seconds;
      var status = $('health-status');
      var kind, text;
      if (age === null || age === undefined || age < 5) { kind = 'ok'; text = '正常：投票均已及时入库'; }
      else if (age < 60) { kind = 'warn'; text = '略有延迟：最早一票已等待 ' + duration(age); }
      else { kind = 'bad'; text = '入库滞后：最早一票已等待 ' + duration(age) + '，请检查后台任务（worker）'; }
      status.className = 'health-status ' + kind;
      status.textContent = text;
      setText('health-stream', num(h.stream_length));
      setText('health-pending', num(h.pending));
      setText('health-age', duration(age));
      setText('health-drained', num(h.drained_votes));
      var chain = $('health-chain');
      chain.textContent = h.chain_head ? h.chain_head.slice(0, 16) + '…' : '（尚无）';
      chain.title = h.chain_head || '';
    }

    function renderFreezes(items) {
      var box = $('freezes');
      ZM.clear(box);
      if (!items.length) { box.appendChild(empty('没有冻结记录。')); return; }
      var now = Date.now();
      box.appendChild(table(['候选人', '冻结时间', '当时/平时（票/分钟）', '状态'], items.slice(0, 30).map(function (f) {
        var active = !f.lifted_at && new Date(f.frozen_until).getTime() > now;
        var stateCell;
        if (f.lifted_at) {
          stateCell = el('td', { class: 'small' }, [badge('已解除'), ' ' + (f.lifted_by || '') + '：' + (f.lift_reason || '')]);
        } else if (active) {
          stateCell = el('td', {}, [badge('冻结中', 'rejected'), ' ',
            el('button', {
              type: 'button', class: 'btn small', 'data-testid': 'freeze-lift-' + f.nominee,
              onclick: function (e) { liftFreeze(f.nominee, e.target); }
            }, ['解除冻结'])]);
        } else {
          stateCell = el('td', { class: 'small muted' }, ['已到期（' + fmtTime(f.frozen_until) + '）']);
        }
        return el('tr', { 'data-testid': 'freeze-' + f.nominee }, [
          el('td', {}, [f.nominee + ' ' + nomineeName(f.nominee)]),
          el('td', { class: 'small' }, [fmtTime(f.frozen_at), el('br'), '至 ' + fmtTime(f.frozen_until)]),
          el('td', { class: 'small', title: f.explanation || '' }, [num(f.minute_votes) + ' / ' + (f.baseline_per_minute || '—'),
            el('div', { class: 'muted' }, [f.explanation || ''])]),
          stateCell
        ]);
      }), { class: 'grid compact' }));
    }

    function liftFreeze(number, button) {
      dialog({
        title: '解除 ' + number + ' 的冻结', message: '解除后该候选人立即恢复接受投票。此决定会记名并进入决定链。',
        reason: '解除原因', reasonRequired: true, confirm: '解除冻结'
      }).then(function (reason) {
        if (reason === null) return;
        busy(button, true);
        ZM.api('POST', ADMIN + '/freezes/' + encodeURIComponent(number) + '/lift', { reason: reason }).then(function (res) {
          busy(button, false);
          if (!res.ok) { ZM.toast(ZM.errorOf(res).message, 'error'); return; }
          ZM.toast('已解除 ' + number + ' 的冻结', 'ok');
          refresh();
        });
      });
    }

    function renderStandings(results) {
      var box = $('standings');
      ZM.clear(box);
      results.forEach(function (r) {
        var body;
        if (r.hidden) body = empty('本活动当前隐藏票数与排名。');
        else if (!r.items.length) body = empty('暂无票数。');
        else {
          body = el('ol', { class: 'standings' }, r.items.slice(0, 10).map(function (item) {
            return el('li', { 'data-testid': 'standing-' + item.number }, [
              el('span', { class: 'rank' }, [String(item.rank)]),
              el('span', { class: 'grow' }, [item.number + ' ' + item.name, el('span', { class: 'muted small' }, [' ' + (item.unit || '')])]),
              el('b', {}, [num(item.votes)])
            ]);
          }));
        }
        box.appendChild(el('div', { class: 'standings-box' }, [el('h3', {}, [r.category_name || categoryName(r.category)]), body]));
      });
    }

    function seriesFromTrend(items, rangeMinutes) {
      var byMinute = {};
      items.forEach(function (it) {
        var t = Date.parse(it.at);
        (byMinute[t] = byMinute[t] || {})[it.nominee] = (it.valid || 0) + (it.pending || 0);
      });
      var times = Object.keys(byMinute).map(Number).sort(function (a, b) { return a - b; });
      var cats = (DATA.categories || []).map(function (c) { return c.code; });
      var last = {};
      var prev = null, prevT = null;
      var series = {};
      cats.forEach(function (c) { series[c] = []; });
      times.forEach(function (t) {
        var snap = byMinute[t];
        Object.keys(snap).forEach(function (n) { last[n] = snap[n]; });
        var sums = {};
        cats.forEach(function (c) { sums[c] = 0; });
        Object.keys(last).forEach(function (n) {
          var c = categoryOf(n);
          if (c in sums) sums[c] += last[n];
        });
        if (prev) {
          var gap = Math.max(1, (t - prevT) / 60000);
          cats.forEach(function (c) { series[c].push({ t: t, v: Math.max(0, sums[c] - prev[c]) / gap }); });
        }
        prev = sums; prevT = t;
      });
      var now = Date.now();
      var start = rangeMinutes ? now - rangeMinutes * 60000 : (times.length ? times[0] : now - 3600000);
      return {
        start: start, end: now, points: times.length,
        series: (DATA.categories || []).map(function (c, i) {
          return { code: c.code, label: c.name, color: COLORS[i % COLORS.length], points: series[c.code] };
        })
      };
    }

    function drawTrend() {
      var box = $('chart-votes-per-minute');
      if (!state.trend) return;
      var range = +($('chart-range').value);
      var built = seriesFromTrend(state.trend, range);
      if (built.points < 2) {
        ZM.clear(box).appendChild(empty('暂无足够的快照数据：投票开始后，后台每分钟记录一次各候选人的票数。'));
        box.setAttribute('data-state', 'empty');
        return;
      }
      lineChart(box, built.series, built.start, built.end, '票/分钟');
      box.setAttribute('data-state', 'ready');
    }

    function loadTrend() {
      var range = +($('chart-range').value);
      // The visible window plus one earlier snapshot as the baseline of the first minute.
      var since = range ? '?since=' + encodeURIComponent(new Date(Date.now() - (range + 2) * 60000).toISOString()) : '';
      return ZM.api('GET', ADMIN + '/trend' + since).then(function (res) {
        if (res.ok) { state.trend = res.data.items || []; state.trendAt = Date.now(); drawTrend(); }
        return res;
      });
    }

    function standings() {
      if (!DATA.standings) return Promise.resolve({ ok: true });
      var calls = (DATA.categories || []).map(function (c) {
        return ZM.api('GET', '/api/v1/campaigns/' + SLUG + '/ranking?category=' + encodeURIComponent(c.code));
      });
      return Promise.all(calls).then(function (results) {
        var bad = results.filter(function (r) { return !r.ok; })[0];
        if (bad) return bad;
        renderStandings(results.map(function (r) { return r.data; }));
        return { ok: true };
      });
    }

    function refresh() {
      if (state.busy) return;
      state.busy = true;
      var calls = [standings()];
      if (DATA.role === 'admin') {
        calls.push(ZM.api('GET', ADMIN + '/tally').then(function (res) { if (res.ok) renderTally(res.data); return res; }));
        calls.push(ZM.api('GET', ADMIN + '/health').then(function (res) { if (res.ok) renderHealth(res.data); return res; }));
        calls.push(ZM.api('GET', ADMIN + '/freezes').then(function (res) { if (res.ok) renderFreezes(res.data.items || []); return res; }));
        if (Date.now() - state.trendAt >= DATA.trend_seconds * 1000 - 500) calls.push(loadTrend());
      }
      Promise.all(calls).then(function (results) {
        state.busy = false;
        var bad = results.filter(function (r) { return !r.ok; })[0];
        if (bad) { failed(bad); return; }
        state.lastOk = new Date();
        setText('dash-updated', fmtClock(state.lastOk, true));
        $('dash-updated').setAttribute('data-at', state.lastOk.toISOString());
        showError(errorBox, '');
      });
    }

    var range = $('chart-range');
    if (range) range.addEventListener('change', function () { drawTrend(); loadTrend(); });
    $('dash-refresh').addEventListener('click', function () { state.trendAt = 0; refresh(); });
    document.addEventListener('visibilitychange', function () { if (!document.hidden) refresh(); });
    setInterval(function () { if (!document.hidden) refresh(); }, (DATA.refresh_seconds || 10) * 1000);
    refresh();
  }

  /* ================================================================ settings */

  function settings() {
    var form = $('campaign-form');
    var initial = {};
    // The parts of the final score (awards.scoring.METHOD), in percent.
    var WEIGHTS = ['weights.public', 'weights.jury', 'weights.organizer',
      'weights.satisfaction', 'weights.peer', 'weights.leader'];

    function fieldValue(input) {
      if (input.type === 'checkbox') return input.checked;
      return input.value;
    }

    function snapshot() {
      var out = {};
      Array.prototype.forEach.call(form.elements, function (input) {
        if (input.name) out[input.name] = fieldValue(input);
      });
      return out;
    }
    initial = snapshot();

    function buildChanges() {
      var now = snapshot();
      var changed = function (name) { return now[name] !== initial[name]; };
      var body = {};
      var tz = now.timezone || TZ;
      ['title', 'organizer', 'description'].forEach(function (n) { if (changed(n)) body[n] = now[n].trim(); });
      if (changed('timezone')) body.timezone = now.timezone;
      if (changed('publicity_days')) body.publicity_days = intOrNull(now.publicity_days);
      if (changed('require_recommendation')) body.require_recommendation = now.require_recommendation;
      ['nomination_start', 'nomination_end', 'voting_start', 'voting_end'].forEach(function (n) {
        if (changed(n) || (changed('timezone') && now[n] && n in now)) body[n] = ZM.wallToIso(now[n], tz);
      });
      var ruleNames = Object.keys(now).filter(function (n) { return n.indexOf('rules.') === 0; });
      if (ruleNames.some(changed)) {
        var fraud = now['rules.fraud'].trim();
        var parsed = null;
        if (fraud) {
          try { parsed = JSON.parse(fraud); } catch (e) {
            throw { field: 'rules.fraud', message: '检测阈值不是合法的 JSON' };
          }
        }
        body.rules = {
          votes_per_day: intOrNull(now['rules.votes_per_day']),
          votes_per_nominee_per_day: intOrNull(now['rules.votes_per_nominee_per_day']),
          hide_counts: now['rules.hide_counts'],
          hide_counts_from: now['rules.hide_counts_from'] ? ZM.wallToIso(now['rules.hide_counts_from'], tz) : null,
          ip_soft_limit: intOrNull(now['rules.ip_soft_limit']),
          velocity_factor: intOrNull(now['rules.velocity_factor']),
          velocity_floor: intOrNull(now['rules.velocity_floor']),
          freeze_minutes: intOrNull(now['rules.freeze_minutes']),
          regions: now['rules.regions'].split(/[\s,，、;；]+/).filter(Boolean),
          fraud: parsed
        };
        Object.keys(body.rules).forEach(function (k) {
          if (body.rules[k] === null && k !== 'hide_counts_from' && k !== 'fraud') delete body.rules[k];
        });
      }
      if (WEIGHTS.concat(['weights.satisfaction_min_answers']).some(changed)) {
        // The whole set goes together: the API checks that the parts add up to 100.
        body.weights = {};
        WEIGHTS.forEach(function (n) { body.weights[n.slice(8)] = intOrNull(now[n]) || 0; });
        var least = intOrNull(now['weights.satisfaction_min_answers']);
        if (least !== null) body.weights.satisfaction_min_answers = least;
      }
      return body;
    }

    function updateWeightsSum() {
      var sum = WEIGHTS.reduce(function (acc, n) {
        return acc + (parseInt(form.elements[n].value, 10) || 0);
      }, 0);
      var node = $('weights-sum');
      node.textContent = '各项之和须为 100，当前为 ' + sum + '。';
      node.classList.toggle('field-error', sum !== 100);
    }
    WEIGHTS.forEach(function (n) {
      form.elements[n].addEventListener('input', updateWeightsSum);
    });
    updateWeightsSum();

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      clearFieldErrors(form);
      showError($('campaign-error'), '');
      var body;
      try { body = buildChanges(); } catch (err) {
        fieldError(form, err.field, err.message);
        return;
      }
      if (!Object.keys(body).length) { ZM.toast('没有需要保存的修改'); return; }
      var button = $('campaign-save');
      busy(button, true);
      ZM.api('PATCH', '/api/v1/campaigns/' + SLUG, body).then(function (res) {
        busy(button, false);
        if (!res.ok) {
          var err = ZM.errorOf(res);
          var rest = applyFieldErrors(form, (err.details || {}).fields);
          showError($('campaign-error'), [err.message].concat(rest).join(' '));
          return;
        }
        initial = snapshot();
        var saved = $('campaign-saved');
        saved.textContent = '已保存（' + fmtClock(new Date(), true) + '）';
        show(saved, true);
        ZM.toast('设置已保存', 'ok');
      });
    });

    var catForm = $('category-form');
    if (catForm) {
      catForm.addEventListener('submit', function (e) {
        e.preventDefault();
        clearFieldErrors(catForm);
        showError($('category-error'), '');
        var f = function (name) { return catForm.elements.namedItem(name).value.trim(); };
        var body = {
          code: f('code'), name: f('name'), prefix: f('prefix').toUpperCase(),
          award_count: intOrNull(f('award_count')), max_per_unit: intOrNull(f('max_per_unit'))
        };
        var button = $('category-add');
        busy(button, true);
        ZM.api('POST', '/api/v1/campaigns/' + SLUG + '/categories', body).then(function (res) {
          busy(button, false);
          if (!res.ok) {
            var err = ZM.errorOf(res);
            var rest = applyFieldErrors(catForm, (err.details || {}).fields);
            showError($('category-error'), [err.message].concat(rest).join(' '));
            return;
          }
          var c = res.data;
          ZM.qs('#categories tbody').appendChild(el('tr', { 'data-testid': 'category-' + c.code }, [
            el('td', {}, [c.code]), el('td', {}, [c.name]), el('td', {}, [c.prefix]),
            el('td', {}, [String(c.award_count)]), el('td', {}, [String(c.max_per_unit)])
          ]));
          catForm.reset();
          ZM.toast('已添加奖项「' + c.name + '」', 'ok');
        });
      });
    }

    var phaseForm = $('phase-form');
    var target = $('phase-target');
    function isBack() {
      var option = target.options[target.selectedIndex];
      return !!(option && option.getAttribute('data-back'));
    }
    function phaseHint() {
      var back = isBack();
      $('phase-reason').required = back;
      $('phase-reason-hint').textContent = back ? '（退回必填，会记入审计日志）' : '（可选，会记入审计日志）';
    }
    target.addEventListener('change', phaseHint);
    phaseHint();
    phaseForm.addEventListener('submit', function (e) {
      e.preventDefault();
      var phase = target.value;
      var reason = $('phase-reason').value.trim();
      var error = $('phase-error');
      showError(error, '');
      if (isBack() && !reason) {
        showError(error, '退回到之前的阶段必须填写原因');
        $('phase-reason').focus();
        return;
      }
      var from = PHASES[DATA.phase], to = PHASES[phase];
      var warn = {
        voting: '进入投票阶段后，公众即可在投票时间内投票，投票规则随即锁定。',
        nominating: '各单位可以在推荐时间内填报推荐材料。',
        publicity: '公示开始后，公众可对结果提出异议。',
        closed: '活动结束后不能再修改设置。'
      }[phase] || '';
      dialog({
        title: '确认调整活动阶段',
        message: '从「' + from + '」' + (isBack() ? '退回' : '调整') + '到「' + to + '」。' + warn,
        confirm: isBack() ? '确认退回' : '确认调整', danger: isBack()
      }).then(function (ok) {
        if (ok === null) return;
        var button = $('phase-move');
        busy(button, true);
        ZM.api('POST', '/api/v1/campaigns/' + SLUG + '/phase', { phase: phase, reason: reason || null }).then(function (res) {
          if (!res.ok) { busy(button, false); showError(error, ZM.errorOf(res).message); return; }
          ZM.toast('活动已进入「' + to + '」阶段', 'ok');
          setTimeout(function () { window.location.reload(); }, 600);
        });
      });
    });
  }

  /* ================================================================ review */

  function review() {
    var current = null;
    var rows = ZM.qsa('#review-queue tbody tr');
    // A campaign's recommendation chain (nominations.levels): null until read, then
    // {levels: [...], mine: {...} | null}; an empty chain is a single-level campaign.
    var CHAIN = null;
    var LEVEL_DECISION = { pass: '推荐上报', 'return': '退回修改', reject: '不予推荐' };

    function chained() { return !!(CHAIN && CHAIN.levels && CHAIN.levels.length); }

    function levelName(code) {
      if (code === 'committee') return '评选办';
      var level = chained() ? CHAIN.levels.filter(function (l) { return l.unit_level === code; })[0] : null;
      return level ? level.label : (code || '');
    }

    function waitingAt(n) {
      if (n.status !== 'submitted' || !n.at_level) return '';
      return levelName(n.at_level) + (n.at_unit ? ' · ' + n.at_unit : '');
    }

    /* A bureau's standing at its level: deadline, lock, places per category. */
    function renderStanding() {
      var box = $('level-standing');
      if (!box || !chained()) return;
      var mine = CHAIN.mine;
      var chainText = '本活动逐级推荐：' + CHAIN.levels.map(function (l) {
        return l.label + '（截止 ' + fmtTime(l.deadline) + (l.locked ? '，已截止' : '') + '）';
      }).join(' → ') + ' → 评选办。';
      var text = chainText;
      if (mine) {
        text = '您是' + mine.label + '主管部门（' + mine.unit + '）：本级推荐截止 ' + fmtTime(mine.deadline) +
          (mine.locked ? '，已截止，如需延长请联系评选办' : '') + '；推荐上报名额 ' +
          mine.places.map(function (p) { return p.name + ' ' + p.used + '/' + p.quota; }).join('，') +
          '。' + chainText;
      }
      box.textContent = text;
      show(box, true);
    }

    function loadChain() {
      return ZM.api('GET', '/api/v1/campaigns/' + SLUG + '/levels').then(function (res) {
        if (!res.ok) return;
        CHAIN = res.data;
        renderStanding();
        if (current) configureDecisions(current);
      });
    }

    function renderTrail(steps) {
      return el('ol', { class: 'history', id: 'detail-levels', 'data-testid': 'detail-levels' }, steps.map(function (t) {
        return el('li', { 'data-decision': t.decision, 'data-level': t.unit_level }, [
          el('span', { class: 'muted small' }, [fmtTime(t.at) + ' · ' + t.level_label + (t.unit ? ' · ' + t.unit : '') + ' · ' + t.actor + ' ']),
          el('b', {}, [LEVEL_DECISION[t.decision] || t.decision]),
          t.returned_to ? el('span', { class: 'muted small' }, ['（退回' + (t.returned_to === 'unit' ? '推荐单位' : levelName(t.returned_to)) + '）']) : null,
          t.comment ? el('div', { class: 'comment' }, [t.comment]) : null
        ]);
      }));
    }

    function field(label, value) {
      if (value === null || value === undefined || value === '') value = '—';
      return el('tr', {}, [el('th', {}, [label]), el('td', {}, [String(value)])]);
    }

    function renderMedia(items) {
      var box = el('div', { class: 'media', id: 'detail-media' });
      var photo = null, video = null, note = [];
      items.forEach(function (a) {
        // The gallery's cover (media/gallery.py); a removed or replaced one is no news.
        if (a.kind === 'photo' && a.status === 'ready' && a.cover && !photo) photo = a;
        else if (a.kind === 'video' && a.status === 'ready' && !video) video = a;
        else if (a.status !== 'ready' && a.status !== 'replaced' && a.status !== 'removed') {
          note.push((a.kind === 'video' ? '视频' : '照片') + '：' + (MEDIA_STATUS[a.status] || a.status) +
            (a.status === 'failed' && a.failure_reason ? '（' + a.failure_reason + '）' : ''));
        }
      });
      if (photo) box.appendChild(el('img', { src: photo.thumb_url || photo.photo_url, alt: '候选人照片', class: 'photo', 'data-testid': 'detail-photo' }));
      if (video && video.renditions && video.renditions.length) {
        var v = el('video', { controls: true, preload: 'none', poster: video.poster_url, class: 'video', 'data-testid': 'detail-video' },
          video.renditions.map(function (r) { return el('source', { src: r.url, type: 'video/mp4' }); }));
        box.appendChild(v);
      }
      if (!photo && !video) box.appendChild(empty('没有照片或视频。'));
      note.forEach(function (t) { box.appendChild(el('p', { class: 'muted small' }, [t])); });
      return box;
    }

    function renderHistory(reviews) {
      if (!reviews || !reviews.length) return empty('暂无记录。');
      return el('ol', { class: 'history', id: 'detail-history' }, reviews.map(function (r) {
        return el('li', {}, [
          el('span', { class: 'muted small' }, [fmtTime(r.at) + ' · ' + (r.actor_unit || ROLES[r.actor_role] || r.actor_role) + ' ']),
          el('b', {}, [ACTIONS[r.action] || r.action]),
          r.comment ? el('div', { class: 'comment' }, [r.comment]) : null
        ]);
      }));
    }

    function renderDetail(n, media) {
      var body = $('detail-body');
      ZM.clear(body);
      var deedsLength = Array.from ? Array.from(n.deeds || '').length : (n.deeds || '').length;
      body.appendChild(el('div', { class: 'row' }, [
        el('h2', { class: 'grow', id: 'detail-name' }, [n.name]),
        el('span', { id: 'detail-status', 'data-status': n.status }, [
          badge(STATUS[n.status] || n.status, n.status),
          n.recommended && n.status === 'submitted' ? badge(STATUS.recommended, 'recommended') : null
        ])
      ]));
      body.appendChild(el('p', { class: 'muted', id: 'detail-summary' }, [n.summary]));
      // The printable 推荐审批表 (pages/dossier.py), in a tab of its own for the print dialog.
      body.appendChild(el('p', {}, [el('a', {
        class: 'btn small', id: 'detail-dossier', target: '_blank', rel: 'noopener',
        href: '/console/campaigns/' + SLUG + '/nominations/' + n.id + '/dossier'
      }, ['打印推荐审批表'])]));
      body.appendChild(renderMedia(media));
      body.appendChild(el('table', { class: 'grid kv', id: 'detail-fields' }, [el('tbody', {}, [
        field('编号', n.number),
        field('奖项', n.category_name),
        field('推荐单位', n.unit),
        field('性别', { male: '男', female: '女' }[n.gender] || n.gender),
        field('职称', n.title),
        field('职务', n.position),
        field('科室', n.department),
        field('从业年限', n.years_of_service === null || n.years_of_service === undefined ? '' : n.years_of_service + ' 年'),
        waitingAt(n) ? field('当前层级', '待 ' + waitingAt(n) + ' 推荐') : null,
        field('提交时间', fmtTime(n.submitted_at)),
        field('通过时间', fmtTime(n.approved_at))
      ])]));
      body.appendChild(el('h3', {}, ['事迹材料 ', el('span', { class: 'muted small' }, ['（' + deedsLength + ' 字）'])]));
      body.appendChild(el('div', { class: 'deeds', id: 'detail-deeds' }, [n.deeds]));
      body.appendChild(el('h3', {}, ['单位推荐意见']));
      body.appendChild(el('div', { class: 'deeds', id: 'detail-opinion' }, [n.unit_opinion]));
      if (n.levels && n.levels.length) {
        body.appendChild(el('h3', {}, ['逐级推荐记录']));
        body.appendChild(renderTrail(n.levels));
      }
      body.appendChild(el('h3', {}, ['审核记录']));
      body.appendChild(renderHistory(n.reviews));
      show(body, true);
      show($('detail-placeholder'), false);
      configureDecisions(n);
    }

    function configureDecisions(n) {
      var role = DATA.role;
      var box = $('decision-box');
      var buttons = {
        approve: $('decision-approve'), recommend: $('decision-recommend'),
        'return': $('decision-return'), reject: $('decision-reject'), withdraw: $('decision-withdraw')
      };
      Object.keys(buttons).forEach(function (k) { show(buttons[k], false); if (buttons[k]) buttons[k].disabled = false; });
      showError($('decision-error'), '');
      var note = '';
      var any = false;
      if (n.status === 'submitted') {
        if (!DATA.review_open) {
          note = '当前阶段（' + PHASES[DATA.phase] + '）不能审核。';
        } else if (chained()) {
          // Level by level: only the bureau holding it decides; the committee once every level passed it up.
          var mine = CHAIN.mine;
          var here = role === 'admin' ? n.at_level === 'committee'
            : !!(mine && n.at_level === mine.unit_level && n.at_unit_code === mine.unit_code);
          if (!here) {
            note = '该材料当前待 ' + (waitingAt(n) || '其他层级') + ' 推荐，不在您的待办中。';
          } else if (role === 'reviewer' && mine.locked) {
            note = '本级推荐已于 ' + fmtTime(mine.deadline) + ' 截止，如需延长请联系评选办。';
          } else {
            any = true;
            show(buttons['return'], true);
            show(buttons.reject, true);
            if (role === 'reviewer') {
              show(buttons.recommend, true);
              buttons.recommend.textContent = '推荐上报';
              buttons.reject.textContent = '不予推荐';
              note = '推荐上报占用本级一个名额；退回修改将退回' + (n.levels.some(function (t) { return t.decision === 'pass' && t.holds_place; }) ? '报送本级的下一级' : '推荐单位') + '。';
            } else {
              show(buttons.approve, true);
              note = '各级均已推荐上报；退回将退回最后报送的层级。';
            }
          }
        } else {
          any = true;
          show(buttons['return'], true);
          show(buttons.reject, true);
          if (role === 'reviewer') {
            if (n.recommended) note = '已推荐至评选办，等待评选办审核；如需要仍可退回或不通过。';
            else show(buttons.recommend, true);
          } else {
            show(buttons.approve, true);
            if (DATA.require_recommendation && !n.recommended) {
              buttons.approve.disabled = true;
              note = '本活动须先经主管部门推荐，评选办才能审核通过。';
            }
          }
        }
      } else if (n.status === 'approved' && role === 'admin') {
        any = true;
        show(buttons.withdraw, true);
        note = '已通过，公开编号 ' + (n.number || '') + '。如需撤销入围，请填写原因。';
      } else {
        note = {
          returned: '已退回推荐单位修改，重新提交后再审核。',
          rejected: '已作出不通过的决定。',
          withdrawn: '推荐单位已撤回。',
          approved: '已通过，公开编号 ' + (n.number || '') + '。'
        }[n.status] || '';
      }
      $('decision-comment').value = '';
      show($('decision-comment').closest('label'), any);
      $('decision-comment-hint').textContent = n.status === 'approved' ? '（撤销入围时必填）' : '（退回或不通过时必填）';
      setText('decision-note', note);
      show(box, true);
    }

    function rowOf(id) { return ZM.qs('#review-queue tr[data-id="' + id + '"]'); }

    /* The tabs' figures as the server counts them now (after a decision here or a colleague's). */
    function refreshCounts() {
      return ZM.api('GET', '/console/c/' + SLUG + '/review/counts').then(function (res) {
        if (!res.ok || !res.data || !res.data.views) return;
        ZM.qsa('#review-tabs [data-count]').forEach(function (node) {
          var value = res.data.views[node.getAttribute('data-count')];
          if (value !== undefined) node.textContent = String(value);
        });
      });
    }

    function updateRow(n) {
      var row = rowOf(n.id);
      if (!row) return;
      row.setAttribute('data-status', n.status);
      row.cells[0].textContent = n.number || ('#' + n.id);
      var cell = row.querySelector('.status-cell');
      ZM.clear(cell);
      cell.appendChild(badge(STATUS[n.status] || n.status, n.status));
      if (n.recommended && n.status === 'submitted') { cell.appendChild(document.createTextNode(' ')); cell.appendChild(badge(STATUS.recommended, 'recommended')); }
      row.classList.add('decided');
    }

    function select(id) {
      rows.forEach(function (r) { r.classList.toggle('selected', r.getAttribute('data-id') === String(id)); });
      show($('detail-placeholder'), true);
      setText('detail-placeholder', '读取中…');
      show($('detail-body'), false);
      show($('decision-box'), false);
      Promise.all([
        ZM.api('GET', '/api/v1/nominations/' + id),
        ZM.api('GET', '/api/v1/nominations/' + id + '/media')
      ]).then(function (results) {
        var res = results[0];
        if (!res.ok) { setText('detail-placeholder', ZM.errorOf(res).message); return; }
        current = res.data;
        renderDetail(current, results[1].ok ? (results[1].data.items || []) : []);
        var url = new URL(window.location.href);
        url.searchParams.set('id', id);
        window.history.replaceState(null, '', url.pathname + url.search);
      });
    }

    function decide(decision) {
      if (!current) return;
      var comment = $('decision-comment').value.trim();
      var error = $('decision-error');
      showError(error, '');
      var needsComment = decision === 'return' || decision === 'reject' || decision === 'withdraw';
      if (needsComment && !comment) {
        showError(error, decision === 'withdraw' ? '撤销入围必须填写原因' : '退回或不通过时必须填写意见');
        $('decision-comment').focus();
        return;
      }
      var ask = decision === 'reject' || decision === 'withdraw'
        ? dialog({
          title: decision === 'reject' ? '确认不通过' : '确认撤销入围',
          message: '「' + current.name + '」' + (decision === 'reject'
            ? '将被认定为不通过，推荐单位不能再修改提交。'
            : '将从公开名单中撤下，编号 ' + (current.number || '') + ' 不再接受投票。'),
          confirm: decision === 'reject' ? '不通过' : '撤销入围', danger: true
        })
        : Promise.resolve('');
      ask.then(function (ok) {
        if (ok === null) return;
        var buttons = ZM.qsa('#decision-box button');
        buttons.forEach(function (b) { busy(b, true); });
        var path = '/api/v1/nominations/' + current.id + (decision === 'withdraw' ? '/withdraw' : '/review');
        var body = decision === 'withdraw' ? { comment: comment } : { decision: decision, comment: comment || null };
        ZM.api('POST', path, body).then(function (res) {
          buttons.forEach(function (b) { busy(b, false); });
          // Refused or done, the tabs' figures are reread: a refusal often means a colleague acted.
          refreshCounts();
          if (!res.ok) { showError(error, ZM.errorOf(res).message); return; }
          var n = res.data;
          current = n;
          updateRow(n);
          var done = chained() && DATA.role === 'reviewer' ? {
            approve: '已推荐上报' + (n.at_level ? '至' + levelName(n.at_level) : ''),
            'return': n.status === 'returned' ? '已退回推荐单位' : '已退回' + levelName(n.at_level),
            reject: '已作出不予推荐的决定'
          }[decision] : {
            approve: DATA.role === 'reviewer' ? '已推荐至评选办' : '审核通过，公开编号 ' + (n.number || ''),
            'return': '已退回推荐单位', reject: '已作出不通过的决定', withdraw: '已撤销入围'
          }[decision];
          ZM.toast(done, 'ok');
          refreshCounts();
          if (chained()) loadChain();
          ZM.api('GET', '/api/v1/nominations/' + n.id + '/media').then(function (m) {
            renderDetail(n, m.ok ? (m.data.items || []) : []);
            setText('decision-note', done + '。' + $('decision-note').textContent);
          });
        });
      });
    }

    rows.forEach(function (row) {
      var id = row.getAttribute('data-id');
      row.addEventListener('click', function () { select(id); });
      row.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(id); }
      });
    });
    ZM.qsa('#decision-box [data-decision]').forEach(function (b) {
      b.addEventListener('click', function () { decide(b.getAttribute('data-decision')); });
    });
    var filter = $('filter-category');
    if (filter) filter.addEventListener('change', function () { $('review-filters').submit(); });
    loadChain();
    if (DATA.selected) select(DATA.selected);
    else if (rows.length === 1) select(rows[0].getAttribute('data-id'));
  }

  /* ================================================================ fraud */

  function fraudDesk() {
    var flags = DATA.flags || [];
    var current = null;
    var before = {};   // nominee → valid count seen before this page's last decision

    function flagNominees(flag) {
      var out = [];
      var add = function (n) { if (n && out.indexOf(n) < 0) out.push(n); };
      add(flag.nominee);
      var ev = flag.evidence || {};
      (ev.nominees || []).forEach(add);
      (ev.events || []).forEach(function (e) { add(e.nominee); });
      return out;
    }

    function renderFlags() {
      var box = $('flags');
      ZM.clear(box);
      if (!flags.length) {
        box.appendChild(empty($('flag-status').value === 'open' ? '没有待处理的线索。' : '没有线索。'));
        return;
      }
      box.appendChild(table(['严重度', '规则', '候选人', '票数', '状态', '发现时间'], flags.map(function (f) {
        return flagRow(f, 'flag-', [el('td', {}, [badge(SEVERITY[f.severity] || f.severity, 'sev-' + f.severity), el('span', { class: 'muted small' }, [' ' + Math.round(f.score * 100) + '%'])])]);
      }), { class: 'grid selectable', id: 'flag-table' }));
    }

    /* One row of the flag or the watch table: ``lead`` cells, then rule, nominee, votes,
       status and time; a click or Enter opens the flag. */
    function flagRow(f, testid, lead) {
      var row = el('tr', {
        'data-testid': testid + f.id, 'data-id': f.id, 'data-status': f.status, tabindex: '0',
        class: 'queue-row' + (current && current.id === f.id ? ' selected' : '')
      }, lead.concat([
        el('td', {}, [RULES[f.rule] || f.rule]),
        el('td', {}, [f.nominee ? f.nominee + ' ' + nomineeName(f.nominee) : '多位候选人']),
        el('td', { class: 'num' }, [num(f.vote_count)]),
        el('td', {}, [badge(FLAG_STATUS[f.status] || f.status, 'flag-' + f.status)]),
        el('td', { class: 'small muted' }, [fmtTime(f.created_at)])
      ]));
      row.addEventListener('click', function () { open(f.id); });
      row.addEventListener('keydown', function (e) { if (e.key === 'Enter') open(f.id); });
      return row;
    }

    function loadFlags() {
      var status = $('flag-status').value;
      loadWatch();
      return ZM.api('GET', ADMIN + '/fraud/flags' + (status ? '?status=' + status : '')).then(function (res) {
        if (!res.ok) { ZM.toast(ZM.errorOf(res).message, 'error'); return; }
        flags = res.data.items || [];
        renderFlags();
      });
    }

    /* 观察 (watch): weak observations, listed apart, never offered for confirmation. */
    var watches = [];
    function renderWatch() {
      var box = ZM.clear($('watch-flags'));
      setText('watch-count', watches.length ? '（' + num(watches.length) + '）' : '');
      if (!watches.length) { box.appendChild(empty('没有观察记录。')); return; }
      box.appendChild(table(['规则', '候选人', '票数', '状态', '发现时间'], watches.map(function (f) {
        return flagRow(f, 'watch-', []);
      }), { class: 'grid selectable compact', id: 'watch-table' }));
    }
    function loadWatch() {
      var status = $('flag-status').value;
      return ZM.api('GET', ADMIN + '/fraud/flags?severity=watch' + (status ? '&status=' + status : '')).then(function (res) {
        if (!res.ok) return;
        watches = res.data.items || [];
        renderWatch();
      });
    }

    function renderCounts(numbers, tally, afterDecision) {
      var box = $('nominee-votes');
      ZM.clear(box);
      if (!numbers.length) { box.appendChild(empty('该线索没有指明候选人。')); return; }
      if (!tally) { box.appendChild(empty('票数暂时无法读取。')); return; }
      var per = {};
      (tally.nominees || []).forEach(function (n) { per[n.nominee] = n; });
      box.appendChild(table(['候选人', '有效票', '待审', '无效', '公开计数'], numbers.map(function (number) {
        var n = per[number] || { valid: 0, pending: 0, invalid: 0, live_valid: 0 };
        var valid = el('td', { class: 'num valid', 'data-testid': 'nominee-valid-' + number, 'data-value': n.valid }, [num(n.valid)]);
        if (afterDecision && before[number] !== undefined && before[number] !== n.valid) {
          var delta = n.valid - before[number];
          ZM.clear(valid);
          valid.appendChild(el('s', { class: 'muted' }, [num(before[number])]));
          valid.appendChild(document.createTextNode(' → ' + num(n.valid) + ' '));
          valid.appendChild(el('span', { class: delta < 0 ? 'drop' : 'rise' }, ['（' + (delta > 0 ? '+' : '') + num(delta) + '）']));
        }
        before[number] = n.valid;
        return el('tr', { 'data-testid': 'nominee-votes-' + number }, [
          el('td', {}, [number + ' ' + nomineeName(number)]),
          valid,
          el('td', { class: 'num' }, [num(n.pending)]),
          el('td', { class: 'num' }, [num(n.invalid)]),
          el('td', { class: 'num', 'data-testid': 'nominee-live-' + number }, [num(n.live_valid)])
        ]);
      }), { class: 'grid compact' }));
    }

    function loadCounts(flag, afterDecision) {
      var numbers = flagNominees(flag);
      return ZM.api('GET', ADMIN + '/tally').then(function (res) {
        if (!current || current.id !== flag.id) return;
        if (!res.ok) {
          renderCounts(numbers, null);
          ZM.toast(res.status === 503 ? '计票服务暂时无法读取，票数稍后再试' : ZM.errorOf(res).message, 'error');
          return;
        }
        renderCounts(numbers, res.data, afterDecision);
      });
    }

    function kvTable(rows) {
      return el('table', { class: 'grid kv' }, [el('tbody', {}, rows.map(function (r) {
        return el('tr', {}, [el('th', {}, [r[0]]), el('td', {}, [r[1]])]);
      }))]);
    }

    function renderEvidence(flag) {
      var ev = flag.evidence || {};
      var bars = (ev.histogram || []).map(function (h) { return { t: h.minute * 60000, v: h.votes }; });
      barChart($('flag-histogram'), bars, '该线索涉及投票的每分钟分布');
      var addresses = ev.top_addresses || [];
      var box = ZM.clear($('flag-addresses'));
      box.appendChild(addresses.length ? table(['网段', '票数', '投票人'], addresses.map(function (a) {
        return el('tr', { 'data-testid': 'address-' + a.prefix }, [
          el('td', {}, [el('code', {}, [a.prefix])]), el('td', { class: 'num' }, [num(a.votes)]), el('td', { class: 'num' }, [num(a.voters)])
        ]);
      }), { class: 'grid compact' }) : empty('无'));
      var devices = ev.devices || [];
      box = ZM.clear($('flag-devices'));
      box.appendChild(devices.length ? table(['设备', '投票人'], devices.map(function (d) {
        var id = String(d.device);
        return el('tr', {}, [el('td', { title: id }, [el('code', {}, [id.length > 18 ? id.slice(0, 16) + '…' : id])]), el('td', { class: 'num' }, [num(d.voters)])]);
      }), { class: 'grid compact' }) : empty('没有设备标识或未见复用。'));
      var extra = ZM.clear($('flag-extra'));
      var rows = [];
      if (ev.window && ev.window.start) rows.push(['时间范围', fmtTime(new Date(ev.window.start * 1000), true) + ' 至 ' + fmtTime(new Date(ev.window.end * 1000), true)]);
      if (ev.votes !== undefined) rows.push(['涉及票数 / 投票人', num(ev.votes) + ' / ' + num(ev.voters)]);
      if (ev.sample_voters && ev.sample_voters.length) rows.push(['投票人编号（样本）', ev.sample_voters.join('、')]);
      if (ev.user_agent) rows.push(['浏览器标识', String(ev.user_agent)]);
      if (rows.length) extra.appendChild(kvTable(rows));
      var known = ['top_addresses', 'devices', 'histogram', 'sample_voters', 'window', 'votes', 'voters', 'user_agent'];
      var rest = {};
      Object.keys(ev).forEach(function (k) { if (known.indexOf(k) < 0) rest[k] = ev[k]; });
      if (Object.keys(rest).length) {
        extra.appendChild(el('details', { class: 'raw' }, [
          el('summary', { class: 'small' }, ['检测程序的其他数据']),
          el('pre', { class: 'small' }, [JSON.stringify(rest, null, 2)])
        ]));
      }
    }

    function renderFlag(flag) {
      current = flag;
      setText('flag-title', '#' + flag.id + ' ' + (RULES[flag.rule] || flag.rule));
      var state = ZM.clear($('flag-state'));
      state.appendChild(badge('严重度 ' + (SEVERITY[flag.severity] || flag.severity), 'sev-' + flag.severity));
      state.appendChild(document.createTextNode(' '));
      state.appendChild(badge(FLAG_STATUS[flag.status] || flag.status, 'flag-' + flag.status));
      state.setAttribute('data-status', flag.status);
      setText('flag-explanation', flag.explanation);
      setText('flag-meta', '规则 ' + flag.rule + ' · 可信度 ' + Math.round(flag.score * 100) + '% · 涉及 ' + num(flag.vote_count) + ' 票 · 发现于 ' + fmtTime(flag.created_at));
      renderEvidence(flag);
      $('flag-votes-csv').setAttribute('href', ADMIN + '/votes.csv?flag=' + flag.id);
      var watch = flag.severity === 'watch';
      setText('flag-decided', flag.status === 'open'
        ? (watch ? '观察记录：迹象较弱，不能据此作废投票；核实后可以排除，或到投票浏览中查看这些票。'
          : '尚未处理。确认后，这些票将作废并立即从公开票数中扣除；可以撤销。')
        : (FLAG_STATUS[flag.status] + '：' + (flag.decided_by || '') + ' 于 ' + fmtTime(flag.decided_at) + '，理由：' + (flag.decision_reason || '')));
      show($('flag-confirm'), flag.status === 'open' && !watch);
      show($('flag-block'), !watch);
      show($('flag-dismiss'), flag.status === 'open');
      show($('flag-undo'), flag.status !== 'open');
      showError($('flag-error'), '');
      if (!blockShownFor(flag.id)) resetBlock(flag.id);
      show($('flag-body'), true);
      show($('flag-placeholder'), false);
      ZM.qsa('#flag-table tr[data-id]').forEach(function (r) {
        r.classList.toggle('selected', r.getAttribute('data-id') === String(flag.id));
      });
    }

    function open(id) {
      show($('flag-placeholder'), true);
      setText('flag-placeholder', '读取中…');
      show($('flag-body'), false);
      before = {};
      ZM.api('GET', ADMIN + '/fraud/flags/' + id).then(function (res) {
        if (!res.ok) { setText('flag-placeholder', ZM.errorOf(res).message); return; }
        $('flag-reason').value = '';
        renderFlag(res.data);
        loadCounts(res.data, false);
        var url = new URL(window.location.href);
        url.searchParams.set('flag', id);
        window.history.replaceState(null, '', url.pathname + url.search);
      });
    }

    /* The status filter's figures follow each decision this page makes (a flag leaves one status
       for another), so 「待处理（N）」 never lags behind. */
    function bumpFlagCount(status, delta) {
      var option = ZM.qs('#flag-status option[value="' + status + '"]');
      if (!status || !option || !option.hasAttribute('data-count')) return;
      var value = Math.max(0, Number(option.getAttribute('data-count')) + delta);
      option.setAttribute('data-count', String(value));
      option.textContent = option.getAttribute('data-label') + '（' + value + '）';
    }

    function act(action) {
      if (!current) return;
      var reason = $('flag-reason').value.trim();
      var error = $('flag-error');
      if (!reason) { showError(error, '请填写处理理由'); $('flag-reason').focus(); return; }
      showError(error, '');
      var buttons = [$('flag-confirm'), $('flag-dismiss'), $('flag-undo')];
      buttons.forEach(function (b) { busy(b, true); });
      var was = current.status;
      ZM.api('POST', ADMIN + '/fraud/flags/' + current.id + '/' + action, { reason: reason }).then(function (res) {
        buttons.forEach(function (b) { busy(b, false); });
        if (!res.ok) { showError(error, ZM.errorOf(res).message); return; }
        $('flag-reason').value = '';
        if (res.data.severity !== 'watch') {  // 观察 notes are counted apart (the watch panel)
          bumpFlagCount(was, -1);
          bumpFlagCount(res.data.status, 1);
        }
        renderFlag(res.data);
        ZM.toast({ confirm: '已确认：' + num(res.data.vote_count) + ' 票已作废', dismiss: '已排除该线索', undo: '已撤销决定，票数已恢复' }[action], 'ok');
        loadCounts(res.data, true);
        loadDecisions();
        flags = flags.map(function (f) { return f.id === res.data.id ? res.data : f; });
        watches = watches.map(function (f) { return f.id === res.data.id ? res.data : f; });
        renderWatch();
        var status = $('flag-status').value;
        renderFlags();
        if (status && status !== res.data.status) {
          var row = ZM.qs('#flag-table tr[data-id="' + res.data.id + '"]');
          if (row) row.classList.add('decided');
        }
      });
    }

    /* "屏蔽这些投票人": block every voter the flag names, with its own reason. */
    var blockFlag = null;
    function blockShownFor(id) { return blockFlag === id; }
    function resetBlock(id) {
      blockFlag = id;
      $('flag-block-reason').value = '';
      showError($('flag-block-error'), '');
      show($('flag-block-result'), false);
    }
    function blockVoters() {
      if (!current) return;
      var reason = $('flag-block-reason').value.trim();
      var error = $('flag-block-error');
      if (reason.length < 2) { showError(error, '请填写屏蔽理由（2–500 字）'); $('flag-block-reason').focus(); return; }
      showError(error, '');
      var button = $('flag-block-voters');
      var flagId = current.id;
      busy(button, true);
      ZM.api('POST', ADMIN + '/fraud/flags/' + flagId + '/block-voters', { reason: reason }).then(function (res) {
        busy(button, false);
        if (!current || current.id !== flagId) return;
        if (!res.ok) { showError(error, ZM.errorOf(res).message); return; }
        $('flag-block-reason').value = '';
        var link = $('blocked-link');
        if (link) {
          var blocked = Number(link.getAttribute('data-value')) + res.data.blocked.length;
          link.setAttribute('data-value', String(blocked));
          link.textContent = '已屏蔽的投票人（' + blocked + '）';
        }
        var text = '已屏蔽 ' + num(res.data.blocked.length) + ' 位投票人' +
          (res.data.already_blocked.length ? '（另有 ' + num(res.data.already_blocked.length) + ' 位此前已屏蔽）' : '') + '。';
        if (res.data.warning) text += res.data.warning.message;
        setText('flag-block-result', text);
        show($('flag-block-result'), true);
        ZM.toast('已屏蔽 ' + num(res.data.blocked.length) + ' 位投票人', res.data.warning ? 'error' : 'ok');
      });
    }

    function loadDecisions() {
      return ZM.api('GET', ADMIN + '/decisions').then(function (res) {
        var box = ZM.clear($('decisions'));
        if (!res.ok) { box.appendChild(empty(ZM.errorOf(res).message)); return; }
        var items = (res.data || []).slice().reverse();
        if (!items.length) { box.appendChild(empty('尚无决定。')); return; }
        box.appendChild(table(['序号', '时间', '决定', '线索', '票数', '操作人', '理由', '哈希'], items.slice(0, 50).map(function (d) {
          return el('tr', { 'data-testid': 'decision-' + d.chain_index }, [
            el('td', { class: 'num' }, [String(d.chain_index)]),
            el('td', { class: 'small' }, [fmtTime(d.at, true)]),
            el('td', {}, [DECISIONS[d.action] || d.action]),
            el('td', {}, [d.flag_id ? '#' + d.flag_id : '—']),
            el('td', { class: 'num' }, [num(d.vote_count)]),
            el('td', {}, [d.actor]),
            el('td', {}, [d.reason]),
            el('td', { title: d.hash }, [el('code', {}, [String(d.hash).slice(0, 12) + '…'])])
          ]);
        }), { class: 'grid compact' }));
      });
    }

    /* scans */
    var polling = null;
    function renderScan(scan) {
      var status = $('scan-status');
      var progress = $('scan-progress');
      var running = scan.status === 'queued' || scan.status === 'running';
      show(progress, running);
      $('scan-start').disabled = running;
      status.setAttribute('data-status', scan.status);
      var when = fmtTime(scan.created_at);
      status.textContent = {
        queued: '扫描已排队（' + when + '），等待后台任务执行…',
        running: '正在扫描全部投票…',
        done: '最近一次扫描：' + fmtTime(scan.finished_at) + '，检查 ' + num(scan.votes_scanned) + ' 票，新增 ' + num(scan.flags_created) + ' 条线索。',
        failed: '扫描失败：' + (scan.error || '未知错误')
      }[scan.status] || scan.status;
      status.className = 'small' + (scan.status === 'failed' ? ' field-error' : '');
    }
    function poll(id) {
      clearTimeout(polling);
      polling = setTimeout(function () {
        ZM.api('GET', ADMIN + '/fraud/scans/' + id).then(function (res) {
          if (!res.ok) { poll(id); return; }
          renderScan(res.data);
          if (res.data.status === 'queued' || res.data.status === 'running') poll(id);
          else if (res.data.status === 'done') {
            if (res.data.flags_created) ZM.toast('扫描完成，新增 ' + res.data.flags_created + ' 条线索', 'ok');
            loadFlags();
          }
        });
      }, 2000);
    }
    $('scan-start').addEventListener('click', function () {
      var button = $('scan-start');
      busy(button, true);
      ZM.api('POST', ADMIN + '/fraud/scans').then(function (res) {
        busy(button, false);
        if (!res.ok) { ZM.toast(ZM.errorOf(res).message, 'error'); return; }
        renderScan(res.data);
        poll(res.data.id);
      });
    });
    if (DATA.scan) {
      renderScan(DATA.scan);
      if (DATA.scan.status === 'queued' || DATA.scan.status === 'running') poll(DATA.scan.id);
    }

    $('flag-status').addEventListener('change', function () {
      var url = new URL(window.location.href);
      url.searchParams.set('status', $('flag-status').value);
      window.history.replaceState(null, '', url.pathname + url.search);
      loadFlags();
    });
    $('flag-confirm').addEventListener('click', function () { act('confirm'); });
    $('flag-dismiss').addEventListener('click', function () { act('dismiss'); });
    $('flag-undo').addEventListener('click', function () { act('undo'); });
    $('flag-block-voters').addEventListener('click', blockVoters);
    renderFlags();
    loadWatch();
    loadDecisions();
    heldVotes(function () {
      loadDecisions();
      if (current) loadCounts(current, true);
    });
    if (DATA.selected) open(DATA.selected);
  }

  /* ================================================================ held votes (fraud page) */

  /* Nominees with held ("pending") votes, rendered by the server; release (→ valid) or void
     (→ invalid) all of a nominee's held votes with a reason, then reread the counts. */
  function heldVotes(onDecided) {
    var box = $('held-votes');
    if (!box) return;
    var tbody = ZM.qs('#held-table tbody');

    function rows() { return ZM.qsa('#held-table tbody tr[data-nominee]'); }

    function rowOf(number) {
      return rows().filter(function (r) { return r.getAttribute('data-nominee') === number; })[0] || null;
    }

    function cellOf(row, kind) {
      return row.querySelector('[data-testid="held-' + kind + '-' + row.getAttribute('data-nominee') + '"]');
    }

    function valueOf(cell) { return cell ? +cell.getAttribute('data-value') || 0 : 0; }

    function setCount(cell, value, before) {
      cell.setAttribute('data-value', value);
      ZM.clear(cell);
      if (before !== undefined && before !== value) {
        var delta = value - before;
        cell.appendChild(el('s', { class: 'muted' }, [num(before)]));
        cell.appendChild(document.createTextNode(' → ' + num(value) + ' '));
        cell.appendChild(el('span', { class: delta < 0 ? 'drop' : 'rise' }, ['（' + (delta > 0 ? '+' : '') + num(delta) + '）']));
      } else {
        cell.appendChild(document.createTextNode(num(value)));
      }
    }

    function actions(number) {
      return el('td', { class: 'actions-cell' }, [
        el('button', {
          type: 'button', class: 'btn small primary', id: 'held-release-' + number,
          'data-held-action': 'release', 'data-nominee': number
        }, ['放行']), ' ',
        el('button', {
          type: 'button', class: 'btn small danger', id: 'held-void-' + number,
          'data-held-action': 'void', 'data-nominee': number
        }, ['作废']), ' ',
        el('a', { class: 'small', href: '/console/c/' + SLUG + '/votes?status=pending&nominee=' + encodeURIComponent(number) }, ['逐票'])
      ]);
    }

    /* A nominee whose votes were held after the page was rendered. */
    function newRow(n) {
      var number = n.nominee;
      return el('tr', { 'data-testid': 'held-' + number, 'data-nominee': number, class: 'fresh' }, [
        el('td', {}, [el('b', {}, [number]), ' ' + nomineeName(number)]),
        el('td', { class: 'small' }, [categoryName(n.category || categoryOf(number))]),
        el('td', { class: 'num', 'data-testid': 'held-pending-' + number, 'data-value': n.pending }, [num(n.pending)]),
        el('td', { class: 'num', 'data-testid': 'held-valid-' + number, 'data-value': n.valid }, [num(n.valid)]),
        el('td', { class: 'small muted' }, ['本页打开后新暂扣']),
        el('td', { class: 'small muted' }, ['—']),
        actions(number)
      ]);
    }

    function update(row, pending, valid, showChange) {
      var pendingCell = cellOf(row, 'pending');
      var validCell = cellOf(row, 'valid');
      setCount(pendingCell, pending, showChange ? valueOf(pendingCell) : undefined);
      setCount(validCell, valid, showChange ? valueOf(validCell) : undefined);
      var done = pending === 0;
      row.classList.toggle('decided', done);
      row.setAttribute('data-state', done ? 'done' : 'held');
      ZM.qsa('[data-held-action]', row).forEach(function (b) { show(b, !done); });
      var note = row.querySelector('.held-done');
      if (done && !note) row.lastElementChild.insertBefore(el('span', { class: 'badge held-done' }, ['已处理']), row.lastElementChild.firstChild);
      else if (!done && note) note.parentNode.removeChild(note);
    }

    function updateTotal() {
      var total = rows().reduce(function (sum, r) { return sum + valueOf(cellOf(r, 'pending')); }, 0);
      var node = $('held-total');
      node.setAttribute('data-value', total);
      node.textContent = '共 ' + num(total) + ' 票';
      show($('held-table'), rows().length > 0);
      show($('held-empty'), rows().length === 0);
    }

    function apply(tally, decided) {
      var per = {};
      (tally.nominees || []).forEach(function (n) { per[n.nominee] = n; });
      var seen = {};
      rows().forEach(function (row) {
        var number = row.getAttribute('data-nominee');
        var n = per[number] || { pending: 0, valid: 0 };
        seen[number] = true;
        update(row, n.pending, n.valid, number === decided);
      });
      (tally.nominees || []).forEach(function (n) {
        if (n.pending > 0 && !seen[n.nominee]) tbody.appendChild(newRow(n));
      });
      updateTotal();
    }

    function refresh(decided, decision) {
      var button = $('held-refresh');
      busy(button, true);
      showError($('held-error'), '');
      return ZM.api('GET', ADMIN + '/tally').then(function (res) {
        busy(button, false);
        if (res.ok) { apply(res.data, decided); return; }
        var row = decided ? rowOf(decided) : null;
        if (row && decision) {
          // The counters cannot be read: show what the decision itself reports.
          var pending = Math.max(0, valueOf(cellOf(row, 'pending')) - decision.vote_count);
          var valid = valueOf(cellOf(row, 'valid')) + (decision.to_status === 'valid' ? decision.vote_count : 0);
          update(row, pending, valid, true);
          updateTotal();
        }
        showError($('held-error'), res.status === 503
          ? '计票服务暂时无法读取，票数未能刷新，请稍后点“刷新”。'
          : ZM.errorOf(res).message);
      });
    }

    function decide(action, number) {
      var row = rowOf(number);
      if (!row) return;
      var pending = valueOf(cellOf(row, 'pending'));
      var name = nomineeName(number);
      var release = action === 'release';
      dialog({
        title: (release ? '放行 ' : '作废 ') + number + (name ? ' ' + name : '') + ' 的待审票',
        message: '该候选人当前的全部待审票（本页显示 ' + num(pending) + ' 张，含本页打开后新暂扣的票）将' +
          (release ? '计为有效票，立即计入公开票数。' : '计为无效票，不计入票数。') +
          '此决定记名并进入决定链。',
        reason: '理由', reasonRequired: true,
        confirm: release ? '放行' : '作废', danger: !release
      }).then(function (reason) {
        if (reason === null) return;
        var buttons = ZM.qsa('[data-held-action]', row);
        buttons.forEach(function (b) { busy(b, true); });
        ZM.api('POST', ADMIN + '/votes/pending', { decision: action, reason: reason, nominee: number }).then(function (res) {
          buttons.forEach(function (b) { busy(b, false); });
          if (!res.ok) {
            var err = ZM.errorOf(res);
            if (err.code === 'nothing_pending') {
              ZM.toast(number + ' 已没有待审票（可能已由他人处理）', 'error');
              refresh(null, null);
            } else {
              ZM.toast(err.message, 'error');
            }
            return;
          }
          ZM.toast((release ? '已放行 ' : '已作废 ') + number + ' 的 ' + num(res.data.vote_count) + ' 张待审票', 'ok');
          refresh(number, res.data);
          if (onDecided) onDecided(number);
        });
      });
    }

    box.addEventListener('click', function (e) {
      var button = e.target.closest('[data-held-action]');
      if (button && !button.disabled) decide(button.getAttribute('data-held-action'), button.getAttribute('data-nominee'));
    });
    $('held-refresh').addEventListener('click', function () { refresh(null, null); });
  }

  /* ================================================================ new campaign (/console) */

  function campaignCreate() {
    var form = $('campaign-create-form');
    if (!form) return;
    var FIELDS = DATA.fields || {};
    var TAKEN = DATA.slugs || [];
    var errorBox = $('campaign-create-error');
    var WEIGHTS = ['weights.public', 'weights.jury', 'weights.organizer'];
    var TIMES = ['nomination_start', 'nomination_end', 'voting_start', 'voting_end'];
    var TRIMMED = ['slug', 'title', 'organizer', 'description'];
    var panel = $('campaign-create-panel');
    if (panel && window.location.hash === '#campaign-create') panel.open = true;

    function input(name) { return fieldInput(form, name); }

    function raw(name) {
      var node = input(name);
      if (!node) return '';
      if (node.type === 'checkbox') return node.checked;
      return TRIMMED.indexOf(name) >= 0 || node.type === 'number' ? node.value.trim() : node.value;
    }

    function zone() { return input('timezone').value || TZ; }

    function slugMessage(value) {
      var rule = FIELDS.slug || {};
      if (rule.pattern && !new RegExp(rule.pattern).test(value)) {
        return '活动标识只能用小写英文字母、数字和连字符“-”，以字母或数字开头，共 2–63 位';
      }
      if (TAKEN.indexOf(value) >= 0) return '活动标识“' + value + '”已被使用，请换一个';
      return '';
    }

    /* One field against the schema's own limits; '' when it is fine. */
    function check(name) {
      var rule = FIELDS[name];
      if (!rule || rule.type === 'boolean') return '';
      var value = raw(name);
      var label = rule.label;
      if (value === '') return rule.required ? '请填写' + label : '';
      if (rule.type === 'integer') {
        if (!/^-?\d+$/.test(value)) return label + '请填写整数';
        var n = parseInt(value, 10);
        if ((rule.min !== null && n < rule.min) || (rule.max !== null && n > rule.max)) {
          return label + '应在 ' + rule.min + '–' + rule.max + ' 之间';
        }
        return '';
      }
      if (rule.type === 'datetime') return ZM.wallToIso(value, zone()) ? '' : '请填写有效的' + label + '时间';
      var length = Array.from(value).length;
      if (rule.min_length && length < rule.min_length) return label + '至少 ' + rule.min_length + ' 个字';
      if (rule.max_length && length > rule.max_length) return label + '最多 ' + rule.max_length + ' 个字（现有 ' + length + ' 个）';
      if (name === 'slug') return slugMessage(value);
      if (rule.pattern && !new RegExp(rule.pattern).test(value)) return label + '格式不正确';
      return '';
    }

    function weightsSum() {
      return WEIGHTS.reduce(function (sum, n) { return sum + (parseInt(raw(n), 10) || 0); }, 0);
    }

    function showSum(message) {
      var node = $('create-weights-sum');
      var sum = weightsSum();
      node.textContent = message || ('三项之和须为 100，当前为 ' + sum + '。');
      node.classList.toggle('field-error', !!message || sum !== 100);
    }

    /* Every problem the API would report, found before sending: {name: message}. */
    function problems() {
      var out = {};
      Object.keys(FIELDS).forEach(function (name) {
        var message = check(name);
        if (message) out[name] = message;
      });
      var ms = {};
      TIMES.forEach(function (n) {
        var iso = out[n] ? null : ZM.wallToIso(raw(n), zone());
        ms[n] = iso ? Date.parse(iso) : null;
      });
      var known = function (a, b) { return ms[a] !== null && ms[b] !== null; };
      if (known('nomination_start', 'nomination_end') && ms.nomination_start >= ms.nomination_end) {
        out.nomination_end = '推荐截止时间必须晚于开始时间';
      }
      if (known('voting_start', 'voting_end') && ms.voting_start >= ms.voting_end) {
        out.voting_end = '投票截止时间必须晚于开始时间';
      }
      if (known('nomination_start', 'voting_start') && ms.voting_start < ms.nomination_start) {
        out.voting_start = '投票不能早于推荐开始';
      }
      var daily = parseInt(raw('rules.votes_per_day'), 10);
      var each = parseInt(raw('rules.votes_per_nominee_per_day'), 10);
      if (!out['rules.votes_per_day'] && !out['rules.votes_per_nominee_per_day'] && each > daily) {
        out['rules.votes_per_nominee_per_day'] = '每位候选人每日票数不能超过每日总票数';
      }
      return out;
    }

    function body() {
      var tz = zone();
      var out = {
        slug: raw('slug'), title: raw('title'), organizer: raw('organizer'),
        description: raw('description'), timezone: tz,
        rules: {
          votes_per_day: intOrNull(raw('rules.votes_per_day')),
          votes_per_nominee_per_day: intOrNull(raw('rules.votes_per_nominee_per_day')),
          hide_counts: raw('rules.hide_counts')
        },
        weights: {
          public: intOrNull(raw('weights.public')),
          jury: intOrNull(raw('weights.jury')),
          organizer: intOrNull(raw('weights.organizer'))
        },
        require_recommendation: raw('require_recommendation'),
        publicity_days: intOrNull(raw('publicity_days'))
      };
      TIMES.forEach(function (n) { out[n] = ZM.wallToIso(raw(n), tz); });
      // Optional fields left empty take the API's defaults.
      if (out.weights.organizer === null) delete out.weights.organizer;
      if (out.publicity_days === null) delete out.publicity_days;
      return out;
    }

    function fail(message) {
      showError(errorBox, message);
      focusFirstInvalid(form);
    }

    form.addEventListener('input', function (e) {
      var name = e.target.getAttribute('name');
      if (!name) return;
      if (e.target.classList.contains('invalid')) clearFieldErrors(form, name);
      if (WEIGHTS.indexOf(name) >= 0) showSum('');
    });
    form.addEventListener('change', function (e) {
      var name = e.target.getAttribute('name');
      if (name === 'slug' || name === 'title' || name === 'organizer') {
        var message = check(name);
        if (message) fieldError(form, name, message);
      }
    });
    showSum('');

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      clearFieldErrors(form);
      showError(errorBox, '');
      var found = problems();
      var sumOff = weightsSum() !== 100;
      Object.keys(found).forEach(function (name) { fieldError(form, name, found[name]); });
      if (sumOff) showSum('三项权重之和须为 100，当前为 ' + weightsSum() + '。');
      var count = Object.keys(found).length + (sumOff ? 1 : 0);
      if (count) { fail('有 ' + count + ' 处需要修改，请按提示填写后再创建。'); return; }
      var button = $('campaign-create');
      busy(button, true);
      ZM.api('POST', '/api/v1/campaigns', body()).then(function (res) {
        if (res.ok) {
          ZM.toast('已创建「' + res.data.title + '」，请添加奖项', 'ok');
          window.location.assign('/console/c/' + encodeURIComponent(res.data.slug) + '/settings');
          return;
        }
        busy(button, false);
        var err = ZM.errorOf(res);
        if (err.code === 'campaign_exists') {
          TAKEN.push(raw('slug'));
          fieldError(form, 'slug', '活动标识“' + raw('slug') + '”已被使用，请换一个');
          fail(err.message);
          return;
        }
        var fields = {};
        var given = (err.details || {}).fields || {};
        Object.keys(given).forEach(function (k) { fields[k] = given[k]; });
        if (fields.weights && !Array.isArray(fields.weights) && fields.weights._schema) {
          var weights = {};
          Object.keys(fields.weights).forEach(function (k) { if (k !== '_schema') weights[k] = fields.weights[k]; });
          showSum(zhMessage(fields.weights._schema.join('；'), ''));
          fields.weights = weights;
        }
        fail([err.message].concat(applyFieldErrors(form, fields)).join(' '));
      });
    });
  }

  /* ================================================================ vote browser */

  /* The filters are a plain GET form (the page works without this); empty fields stay out of
     the address, so a filtered view is a short link to share. */
  function voteBrowser() {
    var form = $('vote-browser-form');
    if (!form) return;
    var fields = ZM.qsa('input[name], select[name]', form);
    form.addEventListener('submit', function () {
      fields.forEach(function (n) { if (!n.value.trim()) n.disabled = true; });
    });
    // Coming back through the history must find the form usable again.
    window.addEventListener('pageshow', function () {
      fields.forEach(function (n) { n.disabled = false; });
    });
  }

  var pages = {
    index: campaignCreate, dashboard: dashboard, settings: settings, review: review, fraud: fraudDesk,
    votes: voteBrowser
  };
  if (pages[DATA.page]) pages[DATA.page]();
})();
