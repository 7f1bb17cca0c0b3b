/* Committee console, second half: judging progress, the judge's score sheets, combined results
   with the sensitivity view, publicity and objections, exports. Plain ES2015, no framework.
   Data arrives in <script type="application/json" id="b2-data">; writes go to /api/v1 with the
   cookie and the CSRF header (ZM.api). Text always goes in as text (ZM.el). */
(function () {
  'use strict';
  var ZM = window.ZM;
  var el = ZM.el;
  var svg = ZM.svg;
  var showError = ZM.showError;
  var busy = ZM.busy;

  function readData() { return ZM.data('b2-data') || {}; }

  // Every time the page shows is in the campaign's time zone (as the server renders its own),
  // never the browser's: "2026-05-01 08:30".
  var TZ = readData().timezone || 'Asia/Shanghai';
  function fmtTime(value) {
    if (value === null || value === undefined || value === '') return '';
    var d = new Date(value);
    if (isNaN(d.getTime())) return String(value);
    var parts = {};
    new Intl.DateTimeFormat('en-US', {
      timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', hour12: false
    }).formatToParts(d).forEach(function (p) { parts[p.type] = p.value; });
    if (parts.hour === '24') parts.hour = '00';
    return parts.year + '-' + parts.month + '-' + parts.day + ' ' + parts.hour + ':' + parts.minute;
  }

  /* A button whose action cannot run now: disabled, with the reason as its title and in words
     beside it (``why``, a node the button's aria-describedby names). '' enables it again. */
  function blockWith(button, why, reason) {
    if (!button) return;
    button.disabled = !!reason;
    if (reason) button.setAttribute('title', reason);
    else button.removeAttribute('title');
    if (why) { why.textContent = reason || ''; why.hidden = !reason; }
  }

  // The words the page shows for the domain's codes, as the server names them (awards.labels).
  var LABELS = readData().labels || {};

  function fmt(n, digits) {
    if (n === null || n === undefined || n === '') return '—';
    return Number(n).toFixed(digits === undefined ? 2 : digits);
  }

  function apiError(res) { return ZM.errorOf(res).message; }

  function reloadSoon() { setTimeout(function () { window.location.reload(); }, 600); }

  /* A modal dialog. opts: title, body (nodes), confirmText, cancelText, danger,
     validate(form) → message or '', action(form) → Promise of {error} or a value.
     Resolves to the action's value (or the form) on confirm, null on cancel. */
  function dialog(opts) {
    return new Promise(function (resolve) {
      var previous = document.activeElement;
      var error = el('p', { class: 'field-error', role: 'alert', hidden: true });
      var cancel = el('button', { type: 'button', class: 'btn', text: opts.cancelText || '取消' });
      var ok = el('button', {
        type: 'submit', class: 'btn primary' + (opts.danger ? ' b2-danger' : ''),
        text: opts.confirmText || '确定', 'data-testid': 'dialog-confirm'
      });
      var form = el('form', {
        class: 'dialog b2-dialog form', role: 'dialog', 'aria-modal': 'true',
        'aria-labelledby': 'b2-dialog-title', novalidate: true
      }, [el('h2', { id: 'b2-dialog-title', text: opts.title })]
        .concat(opts.body || []).concat([error, el('div', { class: 'actions' }, [cancel, ok])]));
      var backdrop = el('div', { class: 'dialog-backdrop', id: 'b2-dialog' }, [form]);
      function close(result) {
        document.removeEventListener('keydown', onKey);
        if (backdrop.parentNode) backdrop.parentNode.removeChild(backdrop);
        if (previous && previous.focus) previous.focus();
        resolve(result);
      }
      function onKey(event) { if (event.key === 'Escape') close(null); }
      cancel.addEventListener('click', function () { close(null); });
      backdrop.addEventListener('click', function (event) { if (event.target === backdrop) close(null); });
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var message = opts.validate ? opts.validate(form) : '';
        if (message) { showError(error, message); return; }
        showError(error, '');
        if (!opts.action) { close(form); return; }
        busy(ok, true);
        opts.action(form).then(function (result) {
          busy(ok, false);
          if (result && result.error) showError(error, result.error);
          else close(result === undefined ? true : result);
        });
      });
      document.addEventListener('keydown', onKey);
      document.body.appendChild(backdrop);
      var first = form.querySelector('textarea, input:not([type=hidden]), select');
      (first || ok).focus();
    });
  }

  function reasonField(label, max, placeholder) {
    return el('label', { text: label }, [
      el('textarea', { name: 'reason', maxlength: String(max), rows: '3', required: true, placeholder: placeholder || '' })
    ]);
  }

  function setupFilter(root, itemSelector, attribute) {
    var buttons = ZM.qsa('.b2-filter [data-filter]', root);
    buttons.forEach(function (button) {
      button.addEventListener('click', function () {
        var value = button.getAttribute('data-filter');
        buttons.forEach(function (b) { b.classList.toggle('active', b === button); });
        ZM.qsa(itemSelector, root).forEach(function (item) {
          item.hidden = value !== 'all' && item.getAttribute(attribute) !== value;
        });
        root.dispatchEvent(new CustomEvent('b2-filtered'));
      });
    });
  }

  var CATEGORY_NAMES = {};

  /* ---------------------------------------------------------------- judging (admin) ---- */

  function judgingPage(root, data) {
    var base = '/api/v1/admin/campaigns/' + encodeURIComponent(data.slug);

    // Assign a judge to categories (replaces their assignments in this campaign).
    var assignForm = document.getElementById('b2-assign-form');
    var judgeSelect = document.getElementById('b2-assign-judge');
    var assignError = document.getElementById('b2-assign-error');
    function syncBoxes() {
      var current = data.assignments[judgeSelect.value] || [];
      var panelSelect = document.getElementById('b2-assign-panel');
      if (panelSelect) panelSelect.value = (data.panels || {})[judgeSelect.value] || 'jury';
      ZM.qsa('input[name=categories]', assignForm).forEach(function (box) {
        box.checked = current.indexOf(box.value) >= 0;
      });
    }
    judgeSelect.addEventListener('change', syncBoxes);
    ZM.qsa('.b2-edit-assignment', root).forEach(function (button) {
      button.addEventListener('click', function () {
        judgeSelect.value = button.getAttribute('data-judge');
        syncBoxes();
        assignForm.scrollIntoView({ behavior: 'smooth', block: 'center' });
        judgeSelect.focus();
      });
    });
    assignForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var username = judgeSelect.value;
      var categories = ZM.qsa('input[name=categories]:checked', assignForm).map(function (b) { return b.value; });
      if (!username) { showError(assignError, '请选择评委账号'); return; }
      showError(assignError, '');
      var had = (data.assignments[username] || []).length > 0;
      var confirmFirst = Promise.resolve(true);
      if (!categories.length) {
        if (!had) { showError(assignError, '请至少选择一个奖项'); return; }
        confirmFirst = dialog({
          title: '取消该评委的全部分配？',
          body: [el('p', { text: '评委「' + username + '」将不再评审本活动的任何奖项，已保存的评分表仍保留但不会出现在其评分列表中。' })],
          confirmText: '取消分配', danger: true
        });
      }
      confirmFirst.then(function (yes) {
        if (!yes) return;
        var button = document.getElementById('b2-assign-submit');
        busy(button, true);
        var panelSelect = document.getElementById('b2-assign-panel');
        var body = { username: username, categories: categories };
        if (panelSelect) body.panel = panelSelect.value;
        ZM.api('POST', base + '/judges', body).then(function (res) {
          busy(button, false);
          if (!res.ok) { showError(assignError, apiError(res)); return; }
          ZM.toast('已保存评委分配', 'ok');
          reloadSoon();
        });
      });
    });

    // Criteria editor (until the first sheet is saved).
    var editButton = document.getElementById('b2-criteria-edit');
    var criteriaForm = document.getElementById('b2-criteria-form');
    if (editButton && criteriaForm) setupCriteria(base, data, editButton, criteriaForm);

    // An admin records a conflict for a judge.
    var conflictForm = document.getElementById('b2-conflict-form');
    if (conflictForm) {
      conflictForm.addEventListener('submit', function (event) {
        event.preventDefault();
        var errorNode = document.getElementById('b2-conflict-error');
        var judge = conflictForm.elements.judge.value;
        var nominee = conflictForm.elements.nominee.value.trim().toUpperCase();
        var reason = conflictForm.elements.reason.value.trim();
        if (!nominee) { showError(errorNode, '请填写候选人编号'); return; }
        if (!reason) { showError(errorNode, '请填写回避理由'); return; }
        showError(errorNode, '');
        dialog({
          title: '登记回避',
          body: [el('p', { text: '评委「' + judge + '」将不再评审候选人 ' + nominee + '，其已保存的评分表会被删除。' })],
          confirmText: '登记回避',
          action: function () {
            return ZM.api('POST', '/api/v1/judging/' + encodeURIComponent(data.slug) + '/conflicts',
              { judge: judge, nominee: nominee, reason: reason }).then(function (res) {
              return res.ok ? true : { error: apiError(res) };
            });
          }
        }).then(function (done) {
          if (!done) return;
          ZM.toast('已登记回避', 'ok');
          reloadSoon();
        });
      });
    }

    // Organiser scores.
    ZM.qsa('.b2-organizer-form', root).forEach(function (form) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var input = form.elements.points;
        var errorNode = ZM.qs('.field-error', form);
        var raw = input.value.trim();
        var points = Number(raw);
        if (raw === '' || isNaN(points) || points < 0 || points > 100) {
          input.classList.add('invalid');
          showError(errorNode, '分数应在 0 到 100 之间');
          return;
        }
        input.classList.remove('invalid');
        showError(errorNode, '');
        var button = ZM.qs('button', form);
        busy(button, true);
        ZM.api('PUT', base + '/organizer-scores/' + encodeURIComponent(form.getAttribute('data-number')),
          { points: points }).then(function (res) {
          busy(button, false);
          if (!res.ok) { showError(errorNode, apiError(res)); return; }
          ZM.toast('已保存 ' + form.getAttribute('data-number') + ' 的主办方评分', 'ok');
        });
      });
    });
  }

  var DEFAULT_CRITERIA = [
    { code: 'ethics', name: '医德医风', max_points: 30 },
    { code: 'skill', name: '专业技术', max_points: 30 },
    { code: 'deeds', name: '先进事迹', max_points: 30 },
    { code: 'social', name: '社会评价', max_points: 10 }
  ];

  function setupCriteria(base, data, editButton, form) {
    var rows = document.getElementById('b2-criteria-rows');
    var sum = document.getElementById('b2-criteria-sum');
    var errorNode = document.getElementById('b2-criteria-error');

    function updateSum() {
      var total = 0;
      ZM.qsa('input[name=max_points]', rows).forEach(function (input) { total += Number(input.value) || 0; });
      sum.textContent = '满分合计 ' + total + ' 分' + (total === 100 ? '' : '（建议合计 100 分）');
    }
    function addRow(item) {
      var remove = el('button', { type: 'button', class: 'btn-link', text: '删除', 'aria-label': '删除此项' });
      var row = el('tr', { class: 'b2-criterion' }, [
        el('td', {}, [el('input', { name: 'name', maxlength: '60', value: item.name || '', 'aria-label': '评分项名称' })]),
        el('td', {}, [el('input', { name: 'code', maxlength: '40', value: item.code || '', 'aria-label': '评分项代码' })]),
        el('td', {}, [el('input', { name: 'max_points', type: 'number', min: '1', max: '100', step: '1', value: item.max_points || '', 'aria-label': '满分' })]),
        el('td', {}, [remove])
      ]);
      remove.addEventListener('click', function () { rows.removeChild(row); updateSum(); });
      rows.appendChild(row);
    }
    editButton.addEventListener('click', function () {
      ZM.clear(rows);
      (data.criteria.length ? data.criteria : DEFAULT_CRITERIA).forEach(addRow);
      updateSum();
      form.hidden = false;
      editButton.hidden = true;
    });
    document.getElementById('b2-criteria-add').addEventListener('click', function () {
      addRow({ code: 'item_' + (rows.children.length + 1), name: '', max_points: 10 });
      updateSum();
    });
    document.getElementById('b2-criteria-cancel').addEventListener('click', function () {
      form.hidden = true;
      editButton.hidden = false;
      showError(errorNode, '');
    });
    rows.addEventListener('input', updateSum);
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var items = [];
      var problems = [];
      var seen = {};
      ZM.qsa('tr', rows).forEach(function (row, i) {
        var name = row.querySelector('[name=name]');
        var code = row.querySelector('[name=code]');
        var max = row.querySelector('[name=max_points]');
        var label = '第 ' + (i + 1) + ' 项';
        [name, code, max].forEach(function (input) { input.classList.remove('invalid'); });
        var item = { name: name.value.trim(), code: code.value.trim(), max_points: Number(max.value) };
        if (!item.name || item.name.length > 60) { problems.push(label + '：请填写名称（60 字以内）'); name.classList.add('invalid'); }
        if (!/^[a-z0-9_]{1,40}$/.test(item.code)) { problems.push(label + '：代码只能用小写字母、数字和下划线'); code.classList.add('invalid'); }
        else if (seen[item.code]) { problems.push(label + '：代码「' + item.code + '」重复'); code.classList.add('invalid'); }
        seen[item.code] = true;
        if (!(item.max_points >= 1 && item.max_points <= 100 && Math.floor(item.max_points) === item.max_points)) {
          problems.push(label + '：满分应是 1 到 100 之间的整数'); max.classList.add('invalid');
        }
        items.push(item);
      });
      if (!items.length) problems.push('至少需要一个评分项');
      if (items.length > 20) problems.push('评分项最多 20 个');
      if (problems.length) { showError(errorNode, problems.join('；')); return; }
      showError(errorNode, '');
      var button = document.getElementById('b2-criteria-save');
      busy(button, true);
      ZM.api('PUT', base + '/criteria', { items: items }).then(function (res) {
        busy(button, false);
        if (!res.ok) { showError(errorNode, apiError(res)); return; }
        ZM.toast('评分标准已保存', 'ok');
        reloadSoon();
      });
    });
  }

  /* ---------------------------------------------------------------- sheets (judge) ------ */

  var SHEET_STATUS = LABELS.sheet_statuses || {};
  var PANEL_NAMES = LABELS.panels || {};

  function sheetsPage(root, data) {
    var items = data.items || [];
    var criteria = data.criteria || [];
    var editable = !!data.open && criteria.length > 0;
    var maxTotal = criteria.reduce(function (s, c) { return s + c.max_points; }, 0);
    var panel = document.getElementById('b2-sheet');
    var current = null;
    var dirty = false;
    if (!panel) return;

    function find(number) {
      for (var i = 0; i < items.length; i++) if (items[i].number === number) return items[i];
      return null;
    }
    function updateProgress() {
      var done = items.filter(function (i) { return i.sheet_status === 'submitted'; }).length;
      var label = document.getElementById('b2-sheets-progress');
      var bar = document.getElementById('b2-sheets-bar');
      label.textContent = '已评 ' + done + ' / ' + items.length;
      label.setAttribute('data-done', String(done));
      label.setAttribute('data-total', String(items.length));
      bar.max = items.length || 1;
      bar.value = done;
    }
    function updateRow(item) {
      var row = ZM.qs('.b2-queue-row[data-number="' + item.number + '"]', root);
      if (!row) return;
      row.setAttribute('data-status', item.sheet_status);
      var badge = ZM.qs('.b2-sheet-badge', row);
      badge.className = 'badge b2-sheet-badge ' + item.sheet_status;
      badge.textContent = SHEET_STATUS[item.sheet_status];
    }
    function markActive() {
      ZM.qsa('.b2-queue-row', root).forEach(function (row) {
        var on = current && row.getAttribute('data-number') === current.number;
        row.classList.toggle('active', !!on);
        var link = ZM.qs('a', row);
        if (on) link.setAttribute('aria-current', 'true'); else link.removeAttribute('aria-current');
      });
    }
    function nextOpen(after) {
      var start = after ? items.indexOf(after) + 1 : 0;
      for (var i = 0; i < items.length; i++) {
        var candidate = items[(start + i) % items.length];
        if (candidate.sheet_status !== 'submitted' && candidate !== after) return candidate;
      }
      return null;
    }
    function leaveOk() {
      if (!dirty) return Promise.resolve(true);
      return dialog({
        title: '评分尚未保存',
        body: [el('p', { text: '当前候选人的评分修改还没有保存，离开将丢失这些修改。' })],
        confirmText: '放弃修改', danger: true
      });
    }
    function open(item, focus) {
      current = item;
      dirty = false;
      markActive();
      renderSheet(item);
      if (window.history.replaceState) window.history.replaceState(null, '', '#n-' + item.number);
      if (focus) panel.focus();
    }
    function go(item) {
      if (!item || item === current) return;
      leaveOk().then(function (yes) { if (yes) open(item, true); });
    }

    root.addEventListener('click', function (event) {
      var link = event.target.closest ? event.target.closest('.b2-queue-item') : null;
      if (!link) return;
      event.preventDefault();
      go(find(link.getAttribute('data-number')));
    });
    setupFilter(root, '.b2-queue-row', 'data-status');
    root.addEventListener('b2-filtered', function () {
      // A category heading shows only while one of its nominees does.
      var heading = null;
      var visible = false;
      ZM.qsa('#b2-queue > li', root).forEach(function (li) {
        if (li.classList.contains('b2-queue-group')) {
          if (heading) heading.hidden = !visible;
          heading = li;
          visible = false;
        } else if (!li.hidden) visible = true;
      });
      if (heading) heading.hidden = !visible;
    });
    window.addEventListener('beforeunload', function (event) {
      if (dirty) { event.preventDefault(); event.returnValue = ''; }
    });

    function renderMedia(item) {
      var nodes = [];
      if (item.video && item.video.renditions && item.video.renditions.length) {
        nodes.push(el('video', {
          controls: true, preload: 'none', poster: item.video.poster_url, class: 'b2-video',
          playsinline: true, 'data-testid': 'nominee-video'
        }, item.video.renditions.map(function (r) {
          return el('source', { src: r.url, type: 'video/mp4', 'data-label': r.label });
        })));
      }
      if (item.photo_url) {
        nodes.push(el('a', { href: item.photo_url, target: '_blank', rel: 'noopener' }, [
          el('img', { src: item.photo_url, alt: item.name + ' 的照片', class: 'b2-photo', 'data-testid': 'nominee-photo' })
        ]));
      }
      return nodes.length ? el('div', { class: 'b2-media' }, nodes) : null;
    }

    function renderSheet(item) {
      ZM.clear(panel);
      var index = items.indexOf(item);
      var prev = el('button', { type: 'button', class: 'btn small', text: '‹ 上一位', disabled: index <= 0 });
      var next = el('button', { type: 'button', class: 'btn small', text: '下一位 ›', disabled: index >= items.length - 1 });
      prev.addEventListener('click', function () { go(items[index - 1]); });
      next.addEventListener('click', function () { go(items[index + 1]); });

      var status = el('span', {
        class: 'badge b2-sheet-badge ' + item.sheet_status, id: 'b2-sheet-status',
        'data-testid': 'sheet-status', text: SHEET_STATUS[item.sheet_status]
      });
      panel.appendChild(el('div', { class: 'row b2-sheet-head' }, [
        el('h2', { class: 'grow', id: 'b2-nominee-name' }, [
          el('span', { class: 'num muted', text: item.number + ' ' }), item.name
        ]),
        item.panel ? el('span', {
          class: 'badge b2-panel-badge ' + item.panel, 'data-testid': 'sheet-panel',
          text: PANEL_NAMES[item.panel] || item.panel
        }) : null,
        status, prev, next
      ]));
      panel.appendChild(el('p', { class: 'muted small' }, [
        [item.category_name, item.unit, item.title].filter(Boolean).join(' · ')
      ]));
      var media = renderMedia(item);
      if (media) panel.appendChild(media);
      if (item.summary) panel.appendChild(el('p', { class: 'b2-summary', text: item.summary }));
      panel.appendChild(el('details', { class: 'b2-deeds-box', open: true }, [
        el('summary', { text: '事迹材料（' + (item.deeds || '').length + ' 字）' }),
        el('div', { class: 'b2-deeds', id: 'b2-deeds', text: item.deeds || '' })
      ]));
      panel.appendChild(renderForm(item));
    }

    function renderForm(item) {
      var form = el('form', { id: 'b2-sheet-form', class: 'form b2-sheet-form', novalidate: true, 'data-testid': 'sheet-form' });
      var total = el('b', { id: 'b2-sheet-total', 'data-testid': 'sheet-total' });
      var body = el('tbody');
      criteria.forEach(function (c) {
        var value = item.scores && item.scores[c.code] !== undefined ? String(item.scores[c.code]) : '';
        var input = el('input', {
          type: 'number', name: c.code, id: 'b2-score-' + c.code, class: 'b2-score-input',
          min: '0', max: String(c.max_points), step: '0.5', inputmode: 'decimal', value: value,
          'aria-describedby': 'b2-score-error-' + c.code, disabled: !editable, 'data-testid': 'score-input'
        });
        body.appendChild(el('tr', {}, [
          el('th', {}, [el('label', { for: 'b2-score-' + c.code, text: c.name })]),
          el('td', { class: 'muted small', text: '0 – ' + c.max_points + ' 分' }),
          el('td', {}, [input]),
          el('td', {}, [el('span', { class: 'field-error', id: 'b2-score-error-' + c.code, hidden: true })])
        ]));
      });
      form.appendChild(el('table', { class: 'grid b2-score-table' }, [
        el('thead', {}, [el('tr', {}, [el('th', { text: '评分项' }), el('th', { text: '范围' }), el('th', { text: '得分' }), el('th')])]),
        body,
        el('tfoot', {}, [el('tr', {}, [el('th', { text: '合计' }), el('td'), el('td', {}, [total]), el('td')])])
      ]));
      var comment = el('textarea', { name: 'comment', maxlength: '1000', rows: '3', disabled: !editable, id: 'b2-sheet-comment' });
      comment.value = item.comment || '';
      var counter = el('div', { class: 'counter' });
      form.appendChild(el('label', { text: '评语（可选，1000 字以内）' }, [comment, counter]));
      var formError = el('p', { class: 'field-error', role: 'alert', id: 'b2-sheet-error', hidden: true });
      form.appendChild(formError);

      function refreshTotal() {
        var sum = 0;
        var filled = 0;
        criteria.forEach(function (c) {
          var v = form.elements[c.code].value.trim();
          if (v !== '' && !isNaN(Number(v))) { sum += Number(v); filled += 1; }
        });
        total.textContent = (Math.round(sum * 100) / 100) + ' / ' + maxTotal +
          (filled < criteria.length ? '（已打 ' + filled + ' / ' + criteria.length + ' 项）' : '');
        counter.textContent = comment.value.length + ' / 1000';
      }
      refreshTotal();
      form.addEventListener('input', function (event) {
        dirty = true;
        if (event.target.classList.contains('b2-score-input')) checkOne(event.target, false);
        refreshTotal();
      });

      function checkOne(input, requireAll) {
        var c = criteria.filter(function (x) { return x.code === input.name; })[0];
        var raw = input.value.trim();
        var message = '';
        // A number input holding letters reports an empty value but a bad input.
        if (input.validity && input.validity.badInput) message = '「' + c.name + '」请输入数字';
        else if (raw === '') message = requireAll ? '请为「' + c.name + '」打分' : '';
        else if (isNaN(Number(raw))) message = '「' + c.name + '」请输入数字';
        else if (Number(raw) < 0 || Number(raw) > c.max_points) message = '「' + c.name + '」的分值应在 0 到 ' + c.max_points + ' 之间';
        else if (!/^\d+(\.\d{1,2})?$/.test(raw)) message = '「' + c.name + '」最多保留两位小数';
        input.classList.toggle('invalid', !!message);
        showError(document.getElementById('b2-score-error-' + c.code), message);
        return message;
      }

      function save(submit) {
        var requireAll = submit || item.sheet_status === 'submitted';
        var scores = {};
        var problems = [];
        criteria.forEach(function (c) {
          var input = form.elements[c.code];
          var message = checkOne(input, requireAll);
          if (message) problems.push(message);
          else if (input.value.trim() !== '') scores[c.code] = Number(input.value.trim());
        });
        if (!problems.length && !Object.keys(scores).length) problems.push('请至少为一项打分再保存');
        if (problems.length) { showError(formError, problems[0] + (problems.length > 1 ? ' 等 ' + problems.length + ' 处' : '')); return; }
        showError(formError, '');
        var buttons = ZM.qsa('button', form);
        buttons.forEach(function (b) { busy(b, true); });
        var path = '/api/v1/judging/' + encodeURIComponent(data.slug) + '/sheets/' + encodeURIComponent(item.number);
        ZM.api('PUT', path, { scores: scores, comment: comment.value.trim() || null, submit: submit }).then(function (res) {
          buttons.forEach(function (b) { busy(b, false); });
          if (!res.ok) {
            var err = ZM.errorOf(res);
            var fields = err.details && err.details.fields;
            if (fields) {
              Object.keys(fields).forEach(function (code) {
                var input = form.elements[code];
                if (input) input.classList.add('invalid');
                showError(document.getElementById('b2-score-error-' + code), fields[code].join('；'));
              });
            }
            showError(formError, err.message);
            return;
          }
          item.sheet_status = res.data.status;
          item.scores = res.data.scores;
          item.total = res.data.total;
          item.comment = res.data.comment;
          dirty = false;
          updateRow(item);
          updateProgress();
          ZM.toast(res.data.status === 'submitted' ? '已提交 ' + item.number + ' 的评分' : '已暂存', 'ok');
          var following = submit ? nextOpen(item) : null;
          if (following) open(following, true);
          else renderSheet(item);
        });
      }

      var actions = el('div', { class: 'row b2-sheet-actions' });
      if (editable) {
        if (item.sheet_status !== 'submitted') {
          var draft = el('button', { type: 'button', class: 'btn', id: 'b2-sheet-save', text: '暂存' });
          draft.addEventListener('click', function () { save(false); });
          actions.appendChild(draft);
        }
        var submitButton = el('button', {
          type: 'submit', class: 'btn primary', id: 'b2-sheet-submit', 'data-testid': 'sheet-submit',
          text: item.sheet_status === 'submitted' ? '保存修改' : '提交评分'
        });
        actions.appendChild(submitButton);
        form.addEventListener('submit', function (event) { event.preventDefault(); save(true); });
        actions.appendChild(el('span', { class: 'grow' }));
        var conflict = el('button', { type: 'button', class: 'btn-link', id: 'b2-declare-conflict', text: '声明回避…' });
        conflict.addEventListener('click', function () { declareConflict(item); });
        actions.appendChild(conflict);
      } else {
        form.addEventListener('submit', function (event) { event.preventDefault(); });
        actions.appendChild(el('p', {
          class: 'muted small',
          text: criteria.length ? '评分表已锁定，只能查看。' : '评分标准尚未设置，暂时不能打分。'
        }));
      }
      form.appendChild(actions);
      return form;
    }

    function declareConflict(item) {
      dialog({
        title: '声明回避：' + item.number + ' ' + item.name,
        body: [
          el('p', { class: 'small', text: '如您与该候选人存在亲属、师生、同事等可能影响公正的关系，请声明回避。声明后您将不再评审该候选人，已保存的评分会被删除，且不能撤销。' }),
          reasonField('回避理由', 500, '如：与候选人为近亲属')
        ],
        confirmText: '确认回避', danger: true,
        validate: function (form) { return form.elements.reason.value.trim() ? '' : '请填写回避理由'; },
        action: function (form) {
          return ZM.api('POST', '/api/v1/judging/' + encodeURIComponent(data.slug) + '/conflicts',
            { nominee: item.number, reason: form.elements.reason.value.trim() }).then(function (res) {
            return res.ok ? true : { error: apiError(res) };
          });
        }
      }).then(function (done) {
        if (!done) return;
        var index = items.indexOf(item);
        items.splice(index, 1);
        var row = ZM.qs('.b2-queue-row[data-number="' + item.number + '"]', root);
        if (row) row.parentNode.removeChild(row);
        root.dispatchEvent(new CustomEvent('b2-filtered'));
        updateProgress();
        ZM.toast('已声明回避', 'ok');
        dirty = false;
        var following = items[index] || items[index - 1];
        if (following) open(following, true);
        else {
          current = null;
          ZM.clear(panel).appendChild(el('p', { class: 'muted', text: '您的评分列表已没有候选人。' }));
        }
      });
    }

    panel.setAttribute('tabindex', '-1');
    var fromHash = window.location.hash.indexOf('#n-') === 0 ? find(decodeURIComponent(window.location.hash.slice(3))) : null;
    var first = fromHash || nextOpen(null) || items[0];
    if (first) open(first, false);
  }

  /* ---------------------------------------------------------------- results (admin) ----- */

  var ADJUST_NAMES = LABELS.adjustments || {};
  var VERSION_STATUS = LABELS.version_statuses || {};

  // Short names of the components beside the public vote (awards.scoring.COMPONENTS).
  var SHORT = { jury: '评委', organizer: '主办方', satisfaction: '满意度', peer: '互评', leader: '点评' };
  var EXTRA = ['satisfaction', 'peer', 'leader'];

  function weightsText(w) {
    var parts = ['公众 ' + (w.public || 0), '评委 ' + (w.jury || 0)];
    ['organizer'].concat(EXTRA).forEach(function (k) { if (w[k]) parts.push(SHORT[k] + ' ' + w[k]); });
    return parts.join(' / ');
  }

  // A scenario's column title: the jury's as before; another component's names it.
  function shiftLabel(s, sep) {
    if (s.current) return '当前';
    var name = SHORT[s.component || 'jury'] || s.component;
    if (s.step < 0) return name + sep + '+' + (-s.step);
    return '公众' + sep + '+' + s.step + (s.component && s.component !== 'jury' ? '（' + name + '）' : '');
  }

  function resultsPage(root, data) {
    var slug = encodeURIComponent(data.slug);
    var base = '/api/v1/admin/campaigns/' + slug + '/results';
    var select = document.getElementById('b2-version-select');
    var meta = document.getElementById('b2-version-meta');
    var actions = document.getElementById('b2-version-actions');
    var tables = document.getElementById('b2-result-tables');
    var sensitivity = document.getElementById('b2-sensitivity');
    var sensitivityBody = document.getElementById('b2-sensitivity-body');
    var categories = data.categories || [];
    var tiersOf = data.tiers || {};
    var version = null;
    var confirmed = {};
    categories.forEach(function (c) { CATEGORY_NAMES[c.code] = c.name; });

    // The award tiers of a category in order ([] for one implicit tier), e.g. 十佳 10, 优秀 10.
    function tiersFor(code) { return tiersOf[code] || []; }
    function tiersText(code) {
      return tiersFor(code).map(function (t) { return t.name + ' ' + t.count + ' 名'; }).join('、');
    }
    function winnerText(e) {
      var suffix = e.adjustment === 'promote' ? '（破格）' : e.adjustment === 'tier' ? '（调整）' : '';
      return (e.tier_name || '获奖') + suffix;
    }

    function summaryOf(n) {
      return (data.versions || []).filter(function (v) { return v.version === n; })[0];
    }
    function optionLabel(v) {
      return '第 ' + v.version + ' 版 · ' + (VERSION_STATUS[v.status] || v.status) + ' · ' + fmtTime(v.created_at);
    }
    function rememberVersion(v) {
      var option = ZM.qs('option[value="' + v.version + '"]', select);
      if (!option) {
        ZM.qsa('option', select).forEach(function (o) { if (!o.value) select.removeChild(o); });
        option = el('option', { value: String(v.version) });
        select.insertBefore(option, select.firstChild);
        select.disabled = false;
        var none = document.getElementById('b2-no-results');
        if (none) none.hidden = true;
      }
      if (option.getAttribute('data-status') !== v.status) {
        // The server wrote the first labels in the campaign's time zone: keep its time.
        var served = /· ([0-9-]+ [0-9:]+)$/.exec(option.textContent);
        option.textContent = served
          ? '第 ' + v.version + ' 版 · ' + (VERSION_STATUS[v.status] || v.status) + ' · ' + served[1]
          : optionLabel(v);
        option.setAttribute('data-status', v.status);
      }
      select.value = String(v.version);
    }

    function load(number) {
      if (!number) return;
      ZM.clear(tables).appendChild(el('p', { class: 'muted', text: '正在载入第 ' + number + ' 版…' }));
      ZM.api('GET', base + '/' + number).then(function (res) {
        if (!res.ok) { ZM.clear(tables).appendChild(el('p', { class: 'alert', text: apiError(res) })); return; }
        show(res.data, true);
      });
    }

    function show(v, refreshShifts) {
      version = v;
      confirmed = {};
      rememberVersion(v);
      if (window.history.replaceState) window.history.replaceState(null, '', '?v=' + v.version);
      renderMeta(v);
      renderActions(v);
      renderTables(v);
      if (refreshShifts) loadShifts(v.version);
    }

    function renderMeta(v) {
      var known = summaryOf(v.version);
      ZM.clear(meta).appendChild(el('div', {}, [
        el('span', { class: 'badge b2-v-' + v.status, 'data-testid': 'version-status', text: VERSION_STATUS[v.status] || v.status }),
        ' 权重 ' + weightsText(v.weights || {}) + ' · 计算人 ' + (v.created_by || '') + ' · ' + fmtTime(v.created_at),
        v.reason ? el('div', { class: 'muted', text: '说明：' + v.reason }) : null,
        el('div', { class: 'muted' }, [
          '投票记录 ' + (v.ledger_votes || 0) + ' 条，链头 ',
          el('code', { class: 'b2-hash', text: v.ledger_head || '—' }),
          v.finalized_at ? ' · 定稿于 ' + fmtTime(v.finalized_at) : '',
          v.published_at ? ' · 公示于 ' + fmtTime(v.published_at) + '，截止 ' + fmtTime(v.publicity_ends_at) : ''
        ]),
        el('details', { class: 'small' }, [el('summary', { text: '计分办法' }), el('div', { class: 'b2-text', text: v.method || '' })])
      ]));
      if (known) known.status = v.status;
    }

    function entriesOf(v, code) {
      return (v.entries || []).filter(function (e) { return e.category === code; })
        .sort(function (a, b) { return a.rank - b.rank; });
    }

    function allConfirmed(v) {
      return categories.every(function (c) { return !entriesOf(v, c.code).length || confirmed[c.code]; });
    }

    function renderActions(v) {
      ZM.clear(actions);
      actions.hidden = false;
      var nodes = [];
      if (v.status === 'draft') {
        var finalize = el('button', {
          type: 'button', class: 'btn primary', id: 'b2-finalize', 'data-testid': 'finalize',
          text: '定稿第 ' + v.version + ' 版', disabled: !allConfirmed(v), 'aria-describedby': 'b2-finalize-why'
        });
        finalize.addEventListener('click', function () { doFinalize(v); });
        nodes.push(el('p', { class: 'small', text: '草稿可以排除或破格入选候选人（须写明理由，记入操作日志）。逐个奖项核对并勾选「确认本奖项名单」后才能定稿；定稿后不能再调整。' }));
        nodes.push(el('div', { class: 'row' }, [finalize, el('span', { class: 'muted small', id: 'b2-confirm-count' })]));
        nodes.push(el('p', { class: 'b2-why small', id: 'b2-finalize-why', 'data-testid': 'finalize-why', hidden: true }));
      } else if (v.status === 'final') {
        if (data.phase === 'judging') {
          var start = el('button', { type: 'button', class: 'btn primary', id: 'b2-publish', 'data-testid': 'publish', text: '进入公示期并发布此版本' });
          start.addEventListener('click', function () { doStartPublicity(v); });
          nodes.push(el('p', { class: 'small', text: '本版本已定稿。进入公示期后公众可以看到获奖名单并提出异议，活动阶段变为「结果公示」。' }));
          nodes.push(start);
        } else if (data.phase === 'publicity') {
          var again = el('button', { type: 'button', class: 'btn primary', id: 'b2-publish', 'data-testid': 'publish', text: '发布此版本（重新公示）' });
          again.addEventListener('click', function () { doRepublish(v); });
          nodes.push(el('p', { class: 'small', text: '本版本已定稿。发布后替换当前公示名单，公示期重新起算。' }));
          nodes.push(again);
        } else {
          nodes.push(el('p', { class: 'small muted', text: '本版本已定稿。只有在「专家评审」阶段可以进入公示，在「结果公示」阶段可以重新发布。' }));
        }
      } else if (v.status === 'published') {
        nodes.push(el('p', { class: 'small' }, [
          '本版本正在公示。', el('a', { href: '/console/c/' + slug + '/publicity', text: '查看公示与异议 ›' })
        ]));
      } else {
        nodes.push(el('p', { class: 'small muted', text: '本版本已被后来的版本取代，仅供查阅。' }));
      }
      nodes.forEach(function (n) { actions.appendChild(n); });
      updateConfirmCount(v);
    }

    function updateConfirmCount(v) {
      var button = document.getElementById('b2-finalize');
      var label = document.getElementById('b2-confirm-count');
      if (!button || !label) return;
      var withEntries = categories.filter(function (c) { return entriesOf(v, c.code).length; });
      var done = withEntries.filter(function (c) { return confirmed[c.code]; }).length;
      label.textContent = '已确认 ' + done + ' / ' + withEntries.length + ' 个奖项';
      blockWith(button, document.getElementById('b2-finalize-why'), !withEntries.length
        ? '本版本没有任何候选人，不能定稿'
        : done < withEntries.length ? '还有 ' + (withEntries.length - done) + ' 个奖项未勾选「确认本奖项名单」' : '');
    }

    function combinedBar(e, w) {
      // 样本不足: the other weights are rescaled to 100 (awards.scoring.METHOD, step 8).
      var scale = w.satisfaction && e.satisfaction_score === null ? 100 / (100 - w.satisfaction || 1) : 1;
      var parts = [
        { value: e.public_score * (w.public || 0) / 100, cls: 'b2-bar-public', label: '公众' },
        { value: e.jury_score * (w.jury || 0) / 100, cls: 'b2-bar-jury', label: '评委' },
        { value: e.organizer_score * (w.organizer || 0) / 100, cls: 'b2-bar-org', label: '主办方' },
        { value: (e.satisfaction_score || 0) * (w.satisfaction || 0) / 100, cls: 'b2-bar-sat', label: '满意度' },
        { value: (e.peer_score || 0) * (w.peer || 0) / 100, cls: 'b2-bar-peer', label: '同行互评' },
        { value: (e.leader_score || 0) * (w.leader || 0) / 100, cls: 'b2-bar-leader', label: '领导点评' }
      ];
      parts.forEach(function (p) { p.value *= scale; });
      var x = 0;
      var rects = [svg('rect', { x: 0, y: 0, width: 100, height: 8, class: 'b2-bar-bg' })];
      parts.forEach(function (p) {
        if (p.value <= 0) return;
        rects.push(svg('rect', { x: x, y: 0, width: p.value, height: 8, class: p.cls }, [
          svg('title', { text: p.label + ' ' + fmt(p.value) })
        ]));
        x += p.value;
      });
      return svg('svg', { viewBox: '0 0 100 8', class: 'b2-bar', role: 'img', 'aria-label': '综合分构成' }, rects);
    }

    // A further component's cell: its score and what it rests on; 样本不足 below the minimum.
    function componentCell(e, k) {
      if (k === 'satisfaction') {
        var short = e.satisfaction_score === null;
        return el('td', { class: 'num' + (short ? ' b2-insufficient' : ''), 'data-component': k }, [
          short ? '样本不足' : fmt(e.satisfaction_score),
          el('div', { class: 'muted small', text: e.satisfaction_answers + ' 份评议' })
        ]);
      }
      return el('td', { class: 'num', 'data-component': k }, [
        fmt(e[k + '_score']), el('div', { class: 'muted small', text: e[k + '_count'] + ' 人评分' })
      ]);
    }

    function renderTables(v) {
      ZM.clear(tables);
      var w = v.weights || {};
      var showOrganizer = !!w.organizer || (v.entries || []).some(function (e) { return e.organizer_score > 0; });
      categories.forEach(function (c) {
        var rows = entriesOf(v, c.code);
        var panel = el('div', { class: 'panel b2-category', 'data-category': c.code, 'data-testid': 'result-category' });
        var winners = rows.filter(function (e) { return e.winner; }).length;
        var tiers = tiersFor(c.code);
        var head = el('div', { class: 'row' }, [
          el('h2', { class: 'grow', text: c.name + '（设 ' + (tiers.length ? tiersText(c.code) + '，共 ' : '') + c.award_count + ' 名，获奖 ' + winners + ' 名）' })
        ]);
        if (v.status === 'draft' && rows.length) {
          var box = el('input', { type: 'checkbox', class: 'b2-confirm', 'data-category': c.code, 'data-testid': 'confirm-category' });
          box.addEventListener('change', function () {
            confirmed[c.code] = box.checked;
            panel.classList.toggle('confirmed', box.checked);
            updateConfirmCount(v);
          });
          head.appendChild(el('label', { class: 'b2-check b2-confirm-label' }, [box, ' 确认本奖项名单']));
        }
        panel.appendChild(head);
        if (!rows.length) {
          panel.appendChild(el('p', { class: 'muted', text: '本奖项没有候选人。' }));
          tables.appendChild(panel);
          return;
        }
        var extra = EXTRA.filter(function (k) { return w[k]; });
        var headers = ['排名', '编号', '姓名', '单位', '有效票', '公众分', '评委分', showOrganizer ? '主办方' : null]
          .concat(extra.map(function (k) { return { satisfaction: '群众满意度', peer: '同行互评', leader: '领导点评' }[k]; }))
          .concat(['综合分', '结果', '调整']);
        if (v.status === 'draft') headers.push('');
        var body = el('tbody');
        var columns = headers.filter(function (h) { return h !== null; }).length;
        rows.forEach(function (e) {
          var result = e.winner
            ? el('span', { class: 'badge b2-win' + (e.tier ? ' b2-tier' : ''), 'data-tier': e.tier || '', 'data-testid': 'result-tier', text: winnerText(e) })
            : el('span', { class: 'badge b2-lose', text: e.adjustment === 'exclude' ? '已排除' : '未获奖' });
          var cells = [
            el('td', { class: 'num', text: String(e.rank) }),
            el('td', { class: 'num', text: e.number }),
            el('td', { text: e.name }),
            el('td', { class: 'small', text: e.unit }),
            el('td', { class: 'num', text: String(e.valid_votes) }),
            el('td', { class: 'num', text: fmt(e.public_score) }),
            el('td', { class: 'num' }, [fmt(e.jury_score), el('div', { class: 'muted small', text: e.jury_count + ' 位评委' })]),
            showOrganizer ? el('td', { class: 'num', text: fmt(e.organizer_score) }) : null
          ].concat(extra.map(function (k) { return componentCell(e, k); })).concat([
            el('td', { class: 'num' }, [el('b', { text: fmt(e.combined) }), combinedBar(e, w)]),
            el('td', {}, [result]),
            el('td', { class: 'small' }, e.adjustment ? [
              el('span', { class: 'badge b2-adj-' + e.adjustment, text: (ADJUST_NAMES[e.adjustment] || e.adjustment) + (e.adjustment === 'tier' && e.tier_name ? ' → ' + e.tier_name : '') }),
              el('div', { class: 'muted', text: e.adjustment_reason || '' })
            ] : [el('span', { class: 'muted', text: '—' })])
          ]);
          if (v.status === 'draft') {
            var adjust = el('button', { type: 'button', class: 'btn small b2-adjust', 'data-number': e.number, text: '调整…' });
            adjust.addEventListener('click', function () { doAdjust(v, e); });
            cells.push(el('td', {}, [adjust]));
          }
          body.appendChild(el('tr', {
            class: (e.winner ? 'b2-winner' : '') + (e.adjustment ? ' b2-adjusted' : ''),
            'data-number': e.number, 'data-testid': 'result-row'
          }, cells));
          var line = lineAfter(c, e.rank);
          if (line && rows.length > e.rank) {
            body.appendChild(el('tr', { class: 'b2-award-line', 'aria-hidden': 'true' }, [
              el('td', { colspan: String(columns), text: line })
            ]));
          }
        });
        panel.appendChild(el('div', { class: 'b2-scroll' }, [el('table', { class: 'grid b2-result-table' }, [
          el('thead', {}, [el('tr', {}, headers.filter(function (h) { return h !== null; }).map(function (h) { return el('th', { text: h }); }))]),
          body
        ])]));
        tables.appendChild(panel);
      });
      if (!categories.length) tables.appendChild(el('p', { class: 'muted', text: '本活动没有奖项。' }));
    }

    // The award line(s) after a rank: each tier's last place by rank, then the award line.
    function lineAfter(c, rank) {
      var tiers = tiersFor(c.code);
      if (!tiers.length) {
        return rank === c.award_count ? '获奖线：前 ' + c.award_count + ' 名（调整后以「结果」列为准）' : '';
      }
      var upTo = 0;
      var from = 1;
      for (var i = 0; i < tiers.length; i++) {
        upTo += tiers[i].count;
        if (rank === upTo) {
          return '「' + tiers[i].name + '」：第 ' + (from === upTo ? upTo : from + '–' + upTo) + ' 名' +
            (i === tiers.length - 1 ? '，获奖线' : '') + '（调整后以「结果」列为准）';
        }
        from = upTo + 1;
      }
      return '';
    }

    function doAdjust(v, e) {
      var tiers = tiersFor(e.category);
      var canMove = tiers.length && e.winner;
      var choose = el('select', { name: 'action' }, [
        el('option', { value: 'exclude', text: '排除：不得获奖（如查实材料不实、违纪）' }),
        el('option', { value: 'promote', text: '破格入选：直接获奖，名单最末一位让出名额' }),
        canMove ? el('option', { value: 'tier', text: '调整等次：改为下面选择的等次，该等次按排名最末的一位顺延' }) : null,
        e.adjustment ? el('option', { value: 'clear', text: '取消已有调整' }) : null
      ]);
      if (e.adjustment) choose.value = 'clear';
      var tierSelect = el('select', { name: 'tier', 'data-testid': 'adjust-tier' }, tiers.map(function (t) {
        return el('option', { value: t.code, text: t.name + '（' + t.count + ' 名）' });
      }));
      if (e.tier) tierSelect.value = e.tier;
      var tierField = el('label', { text: '调整到等次', hidden: true }, [tierSelect]);
      function syncTier() { tierField.hidden = choose.value !== 'tier'; }
      choose.addEventListener('change', syncTier);
      syncTier();
      dialog({
        title: '调整 ' + e.number + ' ' + e.name,
        body: [
          el('p', { class: 'small muted', text: '当前第 ' + e.rank + ' 名，综合分 ' + fmt(e.combined) + (e.tier_name ? '，' + e.tier_name : '') + (e.adjustment ? '，已' + ADJUST_NAMES[e.adjustment] : '') + '。调整会记入操作日志。' }),
          el('label', { text: '调整方式' }, [choose]),
          canMove ? tierField : null,
          reasonField('理由（必填）', 1000, '写明依据，如会议纪要编号')
        ],
        confirmText: '保存调整',
        validate: function (form) { return form.elements.reason.value.trim() ? '' : '调整必须填写理由'; },
        action: function (form) {
          var body = { nominee: e.number, action: form.elements.action.value, reason: form.elements.reason.value.trim() };
          if (body.action === 'tier') body.tier = form.elements.tier.value;
          return ZM.api('POST', base + '/' + v.version + '/adjustments', body)
            .then(function (res) { return res.ok ? { version: res.data } : { error: apiError(res) }; });
        }
      }).then(function (done) {
        if (!done || !done.version) return;
        ZM.toast('已调整 ' + e.number, 'ok');
        show(done.version, true);
      });
    }

    function winnersList(v) {
      var items = [];
      categories.forEach(function (c) {
        var winners = entriesOf(v, c.code).filter(function (e) { return e.winner; });
        var tiers = tiersFor(c.code);
        var groups = tiers.length
          ? tiers.map(function (t) {
            return { label: c.name + ' · ' + t.name, rows: winners.filter(function (e) { return e.tier === t.code; }) };
          })
          : [{ label: c.name, rows: winners }];
        groups.forEach(function (g) {
          var names = g.rows.map(function (e) { return e.number + ' ' + e.name; });
          items.push(el('li', {}, [el('b', { text: g.label + '（' + names.length + ' 名）：' }), names.join('、') || '无']));
        });
      });
      return items;
    }

    function doFinalize(v) {
      dialog({
        title: '定稿第 ' + v.version + ' 版？',
        body: [
          el('p', { class: 'small', text: '定稿后本版本不能再调整；之前的定稿版本（如有）将被取代。获奖名单：' }),
          el('ul', { class: 'b2-winner-list' }, winnersList(v))
        ],
        confirmText: '确认定稿',
        action: function () {
          return ZM.api('POST', base + '/' + v.version + '/finalize').then(function (res) {
            return res.ok ? { version: res.data } : { error: apiError(res) };
          });
        }
      }).then(function (done) {
        if (!done || !done.version) return;
        ZM.toast('第 ' + v.version + ' 版已定稿', 'ok');
        // Another final version is superseded now: refresh the labels of the list.
        reloadSoon();
      });
    }

    function doStartPublicity(v) {
      dialog({
        title: '进入公示期',
        body: [
          el('p', { class: 'small', text: '将发布第 ' + v.version + ' 版的获奖名单，活动进入「结果公示」阶段，评委评分随之锁定。公示期内公众可以提出异议。' }),
          el('ul', { class: 'b2-winner-list' }, winnersList(v))
        ],
        confirmText: '发布并开始公示',
        action: function () {
          return ZM.api('POST', '/api/v1/campaigns/' + slug + '/phase', { phase: 'publicity' }).then(function (res) {
            return res.ok ? true : { error: apiError(res) };
          });
        }
      }).then(function (done) {
        if (!done) return;
        ZM.toast('已发布，公示期开始', 'ok');
        reloadSoon();
      });
    }

    function doRepublish(v) {
      dialog({
        title: '重新发布第 ' + v.version + ' 版？',
        body: [
          el('p', { class: 'small', text: '当前公示名单将被替换，公示期从现在重新起算。' }),
          el('ul', { class: 'b2-winner-list' }, winnersList(v))
        ],
        confirmText: '重新发布',
        action: function () {
          return ZM.api('POST', base + '/' + v.version + '/publish').then(function (res) {
            return res.ok ? true : { error: apiError(res) };
          });
        }
      }).then(function (done) {
        if (!done) return;
        ZM.toast('已重新发布', 'ok');
        reloadSoon();
      });
    }

    function loadShifts(number) {
      sensitivity.hidden = false;
      ZM.clear(sensitivityBody).appendChild(el('p', { class: 'muted', text: '正在测算…' }));
      ZM.api('GET', '/console/c/' + slug + '/results/' + number + '/shifts').then(function (res) {
        if (!version || version.version !== number) return;
        if (!res.ok || !res.data) {
          ZM.clear(sensitivityBody).appendChild(el('p', { class: 'alert', text: apiError(res) }));
          return;
        }
        renderShifts(res.data);
      });
    }

    function renderShifts(report) {
      ZM.clear(sensitivityBody);
      report.categories.forEach(function (c) {
        if (!c.rows.length) return;
        var box = el('div', { class: 'b2-shift-category', 'data-category': c.code, 'data-testid': 'shift-category' });
        box.appendChild(el('h3', { text: c.name }));
        var stable = c.scenarios.every(function (s) { return !s.changed; });
        box.appendChild(el('p', {
          class: stable ? 'b2-ok small' : 'b2-warn small', 'data-testid': 'shift-verdict',
          text: stable ? '权重在 ±' + Math.max.apply(null, c.scenarios.map(function (s) { return Math.abs(s.step); })) + ' 个百分点内变动时，获奖名单不变。'
            : '获奖名单对权重敏感，请在定稿前充分讨论。'
        }));
        box.appendChild(el('ul', { class: 'b2-scenarios' }, c.scenarios.filter(function (s) { return !s.current; }).map(function (s) {
          var text = s.changed
            ? '新增 ' + (s.new_winners.join('、') || '无') + '；落选 ' + (s.dropped.join('、') || '无')
            : '获奖名单不变';
          return el('li', { class: s.changed ? 'changed' : '' }, [el('b', { text: weightsText(s.weights) + '：' }), text]);
        })));
        box.appendChild(slopeChart(c));
        box.appendChild(shiftTable(c));
        sensitivityBody.appendChild(box);
      });
      if (!sensitivityBody.firstChild) sensitivityBody.appendChild(el('p', { class: 'muted', text: '没有可测算的候选人。' }));
    }

    function shiftTable(c) {
      var currentIndex = c.scenarios.map(function (s) { return s.current; }).indexOf(true);
      var head = [el('th', { text: '候选人' })].concat(c.scenarios.map(function (s) {
        return el('th', { class: 'num' + (s.current ? ' b2-current' : '') }, [
          shiftLabel(s, ' '),
          el('div', { class: 'muted small', text: weightsText(s.weights) })
        ]);
      }));
      var body = c.rows.map(function (r) {
        return el('tr', { 'data-number': r.number }, [el('td', {}, [el('span', { class: 'num', text: r.number + ' ' }), r.name])].concat(
          r.ranks.map(function (rank, i) {
            var delta = r.ranks[currentIndex] - rank;
            var cls = 'num b2-rank' + (r.winners[i] ? ' win' : '') + (delta > 0 ? ' up' : delta < 0 ? ' down' : '') +
              (i === currentIndex ? ' b2-current' : '');
            return el('td', { class: cls, title: '综合分 ' + fmt(r.combined[i]) + (r.winners[i] ? '，获奖' : '') }, [
              String(rank),
              delta ? el('span', { class: 'b2-delta', text: delta > 0 ? ' ↑' + delta : ' ↓' + (-delta) }) : null
            ]);
          })));
      });
      return el('div', { class: 'b2-scroll' }, [el('table', { class: 'grid b2-shift-table', 'data-testid': 'shift-table' }, [
        el('thead', {}, [el('tr', {}, head)]), el('tbody', {}, body)
      ])]);
    }

    /* Slope chart: one column per weighting, one line per nominee from rank to rank. */
    function slopeChart(c) {
      var limit = c.award_count + 5;
      var rows = c.rows.filter(function (r) { return Math.min.apply(null, r.ranks) <= limit; });
      var maxRank = 1;
      rows.forEach(function (r) { maxRank = Math.max(maxRank, Math.max.apply(null, r.ranks)); });
      var n = c.scenarios.length;
      var left = 150;
      var right = 200;
      var gap = 120;
      var top = 40;
      var step = 22;
      var width = left + right + gap * (n - 1);
      var height = top + step * maxRank + 16;
      function x(i) { return left + gap * i; }
      function y(rank) { return top + step * (rank - 1) + step / 2; }
      var nodes = [];
      c.scenarios.forEach(function (s, i) {
        nodes.push(svg('line', { x1: x(i), y1: top - 6, x2: x(i), y2: height - 10, class: 'b2-axis' + (s.current ? ' current' : '') }));
        nodes.push(svg('text', { x: x(i), y: 14, class: 'b2-axis-label' + (s.current ? ' current' : ''), 'text-anchor': 'middle', text: shiftLabel(s, '') }));
        nodes.push(svg('text', { x: x(i), y: 28, class: 'b2-axis-sub', 'text-anchor': 'middle', text: s.weights.public + ' / ' + s.weights[s.component || 'jury'] }));
      });
      if (c.award_count < maxRank) {
        var lineY = top + step * c.award_count;
        nodes.push(svg('line', { x1: left - 10, y1: lineY, x2: width - 44, y2: lineY, class: 'b2-award' }));
        nodes.push(svg('text', { x: width - 4, y: lineY + 4, 'text-anchor': 'end', class: 'b2-award-label', text: '获奖线' }));
      }
      rows.forEach(function (r) {
        var moved = r.ranks.some(function (rank) { return rank !== r.rank; });
        var winnerChange = r.winners.some(function (w) { return w !== r.winner; });
        var cls = 'b2-slope' + (winnerChange ? ' flip' : moved ? ' moved' : '');
        var points = r.ranks.map(function (rank, i) { return x(i) + ',' + y(rank); }).join(' ');
        var group = [svg('title', { text: r.number + ' ' + r.name + '：名次 ' + r.ranks.join(' → ') }),
          svg('polyline', { points: points, class: 'b2-slope-line' })];
        r.ranks.forEach(function (rank, i) {
          group.push(svg('circle', { cx: x(i), cy: y(rank), r: 4.5, class: r.winners[i] ? 'b2-dot win' : 'b2-dot' }));
        });
        var first = r.ranks[0];
        var last = r.ranks[r.ranks.length - 1];
        group.push(svg('text', { x: x(0) - 10, y: y(first) + 4, 'text-anchor': 'end', class: 'b2-slope-label', text: first + '. ' + r.number + ' ' + r.name }));
        group.push(svg('text', { x: x(n - 1) + 10, y: y(last) + 4, class: 'b2-slope-label', text: last + '. ' + r.name }));
        nodes.push(svg('g', { class: cls, 'data-number': r.number }, group));
      });
      var chart = svg('svg', {
        viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, class: 'b2-slope-chart',
        role: 'img', 'aria-label': c.name + '：不同权重下的名次变化', 'data-testid': 'slope-chart'
      }, nodes);
      var note = rows.length < c.rows.length
        ? el('p', { class: 'muted small', text: '图中只画出在任一权重下进入前 ' + limit + ' 名的候选人；完整名次见下表。' }) : null;
      return el('div', { class: 'b2-scroll b2-chart-box' }, [chart, note]);
    }

    select.addEventListener('change', function () { load(Number(select.value)); });

    var computeForm = document.getElementById('b2-compute-form');
    computeForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = document.getElementById('b2-compute');
      var reason = document.getElementById('b2-compute-reason').value.trim();
      busy(button, true);
      ZM.api('POST', base, { reason: reason || null }).then(function (res) {
        busy(button, false);
        if (!res.ok) { ZM.toast(apiError(res), 'error'); return; }
        data.versions = [{ version: res.data.version, status: res.data.status, created_at: res.data.created_at }].concat(data.versions || []);
        document.getElementById('b2-compute-reason').value = '';
        ZM.toast('已计算第 ' + res.data.version + ' 版（草稿）', 'ok');
        show(res.data, true);
      });
    });

    if (data.selected) load(data.selected);
  }

  /* ---------------------------------------------------------------- publicity (admin) --- */

  function publicityPage(root, data) {
    var slug = encodeURIComponent(data.slug);
    setupFilter(root, '.b2-objection', 'data-status');

    ZM.qsa('.b2-answer-form', root).forEach(function (form) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var id = form.getAttribute('data-id');
        var decision = ZM.qs('input[name=decision]:checked', form).value;
        var answer = form.elements.answer.value.trim();
        var errorNode = ZM.qs('.field-error', form);
        if (!answer) { form.elements.answer.classList.add('invalid'); showError(errorNode, '请填写答复内容'); return; }
        form.elements.answer.classList.remove('invalid');
        showError(errorNode, '');
        var upheld = decision === 'upheld';
        dialog({
          title: upheld ? '认定异议 #' + id + ' 成立？' : '驳回异议 #' + id + '？',
          body: [el('p', {
            class: 'small',
            text: upheld
              ? '将以现有数据重新核算出一个新的草稿版本。当前公示名单保持不变，直到新版本经调整、定稿并重新发布。'
              : '驳回后，异议内容和您的答复将在公开页面公布（不含联系人信息）。'
          }), el('blockquote', { class: 'b2-text small', text: answer })],
          confirmText: upheld ? '认定成立' : '驳回并公布答复',
          danger: upheld,
          action: function () {
            return ZM.api('POST', '/api/v1/admin/campaigns/' + slug + '/objections/' + id, { decision: decision, answer: answer })
              .then(function (res) { return res.ok ? { result: res.data } : { error: apiError(res) }; });
          }
        }).then(function (done) {
          if (!done || !done.result) return;
          var reopened = done.result.reopened_version;
          if (!reopened) { ZM.toast('已答复异议 #' + id, 'ok'); reloadSoon(); return; }
          dialog({
            title: '已生成第 ' + reopened + ' 版草稿',
            body: [el('p', { class: 'small', text: '请到「综合结果」中调整、定稿并重新发布该版本。' })],
            confirmText: '前往综合结果', cancelText: '留在本页'
          }).then(function (go) {
            if (go) window.location.href = '/console/c/' + slug + '/results?v=' + reopened;
            else window.location.reload();
          });
        });
      });
    });

    var close = document.getElementById('b2-close-campaign');
    if (close) {
      close.addEventListener('click', function () {
        dialog({
          title: '结束本次评选活动？',
          body: [el('p', { class: 'small', text: '结束后活动进入「已结束」阶段，公示名单即为最终结果。公示期未满、仍有未答复的异议或重新核算的结果未公示时，系统会拒绝。' })],
          confirmText: '结束活动', danger: true,
          action: function () {
            return ZM.api('POST', '/api/v1/campaigns/' + slug + '/phase', { phase: 'closed' })
              .then(function (res) { return res.ok ? true : { error: apiError(res) }; });
          }
        }).then(function (done) {
          if (!done) return;
          ZM.toast('活动已结束', 'ok');
          reloadSoon();
        });
      });
    }
  }

  /* ---------------------------------------------------------------- exports (admin) ----- */

  var EXPORT_STATUS = { queued: '排队中', started: '生成中', deferred: '等待中', scheduled: '等待中', finished: '已完成', failed: '失败', stopped: '已停止', canceled: '已取消', expired: '已过期' };

  function exportsPage(root, data) {
    // The list comes from the server (GET …/exports): exports started here, by a colleague, or
    // from the vote browser's download links (which land here with ?job=<id>) all show.
    var slug = encodeURIComponent(data.slug);
    var base = '/api/v1/admin/campaigns/' + slug + '/exports';
    var labels = {};
    (data.kinds || []).forEach(function (k) { labels[k.kind] = k.label; });
    var filterLabels = data.filter_labels || {};
    var jobs = [];
    var polling = {};
    var rows = document.getElementById('b2-export-rows');

    function running(job) { return ['queued', 'started', 'deferred', 'scheduled'].indexOf(job.status) >= 0; }
    function size(bytes) {
      if (!bytes) return '';
      if (bytes < 1024) return bytes + ' B';
      if (bytes < 1048576) return (bytes / 1024).toFixed(1) + ' KB';
      return (bytes / 1048576).toFixed(1) + ' MB';
    }
    function count(n) { return Number(n || 0).toLocaleString('zh-CN'); }
    function filtersText(filters) {
      var keys = Object.keys(filters || {});
      if (!keys.length) return '';
      return keys.map(function (k) {
        var v = filters[k];
        if (k === 'start' || k === 'end') v = fmtTime(v);
        return (filterLabels[k] || k) + '：' + v;
      }).join('；');
    }
    function render() {
      ZM.clear(rows);
      if (!jobs.length) {
        rows.appendChild(el('tr', { class: 'b2-empty' }, [el('td', { colspan: '4', class: 'muted', text: '暂无导出任务。' })]));
      }
      jobs.forEach(function (job) {
        var outcome;
        if (job.status === 'finished' && job.download_url) {
          outcome = el('a', {
            href: job.download_url, class: 'btn small primary', download: '', 'data-testid': 'export-download',
            id: 'b2-download-' + job.job_id, text: '下载' + (job.size ? '（' + size(job.size) + '）' : '')
          });
        } else if (job.status === 'failed' || job.status === 'expired' || job.status === 'stopped' || job.status === 'canceled') {
          outcome = el('span', { class: 'field-error', text: (EXPORT_STATUS[job.status] || job.status) + (job.error ? '：' + job.error : '') });
        } else {
          outcome = el('span', { class: 'muted', text: EXPORT_STATUS[job.status] || job.status });
        }
        var pct = Math.max(0, Math.min(100, job.progress || 0));
        var what = [el('div', { text: labels[job.kind] || job.kind })];
        var filters = filtersText(job.filters);
        if (filters) what.push(el('div', { class: 'small muted', 'data-testid': 'export-filters', text: filters }));
        var meter = [
          el('progress', { max: '100', value: String(pct), 'aria-label': '导出进度', 'data-testid': 'export-progress' }),
          el('span', { class: 'num', text: pct + '%' })
        ];
        if (job.rows_total !== null && job.rows_total !== undefined) {
          meter.push(el('span', { class: 'small muted num', 'data-testid': 'export-rows', text: count(job.rows_done) + ' / ' + count(job.rows_total) + ' 条' }));
        }
        var attrs = { 'data-job': job.job_id, 'data-status': job.status, 'data-testid': 'export-job' };
        if (job.job_id === data.focus) what.push(el('span', { class: 'badge', 'data-testid': 'export-focus', text: '刚刚发起' }));
        rows.appendChild(el('tr', attrs, [
          el('td', {}, what),
          el('td', { class: 'small', text: fmtTime(job.requested_at) + (job.requested_by ? ' · ' + job.requested_by : '') }),
          el('td', {}, [el('div', { class: 'b2-meter' }, meter)]),
          el('td', {}, [outcome])
        ]));
      });
      ZM.qsa('.b2-export-start', root).forEach(function (button) {
        var kind = button.getAttribute('data-kind');
        // Only an unfiltered run of this kind blocks the button (the button starts an unfiltered one);
        // what the server said cannot be made yet (no final result for the winners' list) stays blocked.
        var busyNow = jobs.some(function (j) { return j.kind === kind && running(j) && !filtersText(j.filters); });
        blockWith(button, document.getElementById('b2-export-why-' + kind),
          button.getAttribute('data-blocked') || (busyNow ? '正在生成，完成后可再次生成' : ''));
      });
    }
    function merge(job, state) {
      ['status', 'download_url', 'size', 'rows_done', 'rows_total', 'filters', 'requested_at', 'requested_by', 'kind'].forEach(function (key) {
        if (state[key] !== undefined) job[key] = state[key];
      });
      job.progress = state.status === 'finished' ? 100 : state.progress;
      job.error = state.error ? state.error.message : null;
    }
    function poll(job, delay) {
      if (polling[job.job_id]) return;
      polling[job.job_id] = true;
      setTimeout(function () {
        ZM.api('GET', base + '/' + encodeURIComponent(job.job_id)).then(function (res) {
          polling[job.job_id] = false;
          if (res.ok) merge(job, res.data);
          else if (res.status === 404) { job.status = 'expired'; job.error = apiError(res); }
          render();
          if (running(job)) poll(job, Math.min(3000, delay + 500));
        });
      }, delay);
    }
    function add(state) {
      var job = jobs.filter(function (j) { return j.job_id === state.job_id; })[0];
      if (!job) {
        job = { job_id: state.job_id };
        jobs.unshift(job);
      }
      merge(job, state);
      return job;
    }

    ZM.qsa('.b2-export-start', root).forEach(function (button) {
      button.addEventListener('click', function () {
        var kind = button.getAttribute('data-kind');
        busy(button, true);
        ZM.api('POST', base, { kind: kind }).then(function (res) {
          busy(button, false);
          if (!res.ok) { ZM.toast(apiError(res), 'error'); return; }
          var job = add(res.data);
          render();
          if (running(job)) poll(job, 800);
        });
      });
    });

    render();
    ZM.api('GET', base).then(function (res) {
      if (!res.ok) { ZM.toast(apiError(res), 'error'); return; }
      var known = {};
      jobs.forEach(function (j) { known[j.job_id] = j; });
      jobs = (res.data.items || []).map(function (state) {
        var job = known[state.job_id] || { job_id: state.job_id };
        merge(job, state);
        return job;
      });
      render();
      jobs.forEach(function (job) { if (running(job)) poll(job, 300); });
      var focus = data.focus && document.querySelector('tr[data-job="' + data.focus.replace(/[^A-Za-z0-9_-]/g, '') + '"]');
      if (focus && focus.scrollIntoView) focus.scrollIntoView({ block: 'center' });
    });
  }

  var PAGES = {
    judging: judgingPage,
    sheets: sheetsPage,
    results: resultsPage,
    publicity: publicityPage,
    exports: exportsPage
  };
  var root = document.querySelector('.b2[data-page]');
  if (root && PAGES[root.getAttribute('data-page')]) PAGES[root.getAttribute('data-page')](root, readData());
})();
