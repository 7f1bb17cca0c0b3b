/* The console's 推荐层级 page: set the chain and its quotas, extend a level's deadline with a
   reason, set one unit's own places, open or withdraw a bureau's 推荐名单公示 (the same panel is
   a bureau reviewer's page /console/c/<slug>/level-publicity). Plain ES2015, no framework. Data arrives in
   <script type="application/json" id="levels-data">; writes go to /api/v1 with the cookie and the
   CSRF header (ZM.api); after a write the page reloads to show the server's figures. Times are
   entered and shown in the campaign's time zone, never the browser's. */
(function () {
  'use strict';
  var ZM = window.ZM;
  var DATA = ZM && ZM.data('levels-data');
  if (!DATA) return;
  var $ = function (id) { return document.getElementById(id); };
  var TZ = DATA.timezone || 'Asia/Shanghai';
  var BASE = '/api/v1/campaigns/' + encodeURIComponent(DATA.slug);

  function categoryName(code) {
    var found = (DATA.categories || []).filter(function (c) { return c.code === code; })[0];
    return found ? found.name : code;
  }

  function saved(message) {
    ZM.toast(message, 'ok');
    setTimeout(function () { window.location.reload(); }, 500);
  }

  function send(button, errorNode, method, path, body, message) {
    ZM.showError(errorNode, '');
    ZM.busy(button, true);
    return ZM.api(method, path, body).then(function (res) {
      if (res.ok) { saved(message); return; }
      ZM.busy(button, false);
      ZM.showError(errorNode, ZM.errorOf(res).message);
    });
  }

  /* ------------------------------------------------------------------ the chain */

  var levelsForm = $('levels-form');
  var levelsError = $('levels-error');

  function readChain() {
    var specs = [];
    var problem = '';
    ZM.qsa('fieldset[data-level]', levelsForm).forEach(function (set) {
      if (problem) return;
      var on = ZM.qs('input[name=on]', set);
      if (!on.checked) return;
      var label = on.parentNode.textContent.trim();
      var deadline = ZM.wallToIso(ZM.qs('input[name=deadline]', set).value, TZ);
      if (!deadline) { problem = '请填写' + label + '的截止时间'; return; }
      var quotas = {};
      ZM.qsa('input[name=quota]', set).forEach(function (input) {
        if (problem) return;
        var text = input.value.trim();
        var value = Number(text);
        if (text === '' || !/^\d+$/.test(text) || value > 1000) {
          problem = '请为' + label + '填写「' + categoryName(input.getAttribute('data-category')) +
            '」的名额（0–1000 的整数）';
          return;
        }
        quotas[input.getAttribute('data-category')] = value;
      });
      specs.push({
        unit_level: set.getAttribute('data-level'),
        deadline: deadline,
        quotas: quotas,
        stamped_form: ZM.qs('input[name=stamped_form]', set).checked
      });
    });
    return { specs: specs, problem: problem };
  }

  /* A level's deadline and quotas are asked for only when the level is ticked. */
  function syncLevel(set) {
    var on = ZM.qs('input[name=on]', set).checked;
    ZM.qsa('input[name=deadline], input[name=quota], input[name=stamped_form]', set).forEach(function (input) {
      input.disabled = !on;
    });
  }

  if (levelsForm) {
    ZM.qsa('fieldset[data-level]', levelsForm).forEach(function (set) {
      syncLevel(set);
      ZM.qs('input[name=on]', set).addEventListener('change', function () { syncLevel(set); });
    });
    levelsForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var read = readChain();
      if (read.problem) { ZM.showError(levelsError, read.problem); return; }
      if (!read.specs.length && !(DATA.levels || []).length) {
        ZM.showError(levelsError, '请至少勾选一个推荐层级');
        return;
      }
      var body = { levels: read.specs };
      // The nominating unit's own form: only meaningful with a chain (the API ignores it without).
      if (read.specs.length) body.unit_stamped_form = $('unit-stamped-form').checked;
      send($('levels-save'), levelsError, 'PUT', BASE + '/levels', body, '推荐层级已保存');
    });
    var clear = $('levels-clear');
    if (clear) {
      clear.addEventListener('click', function () {
        if (!window.confirm('取消推荐层级后，本活动改为单级推荐。确定吗？')) return;
        send(clear, levelsError, 'PUT', BASE + '/levels', { levels: [] }, '已改为单级推荐');
      });
    }
  }

  /* ------------------------------------------------------------------ extension */

  var extendForm = $('extend-form');
  if (extendForm) {
    var extendLevel = $('extend-level');
    var extendDeadline = $('extend-deadline');
    var syncMin = function () {
      var option = extendLevel.options[extendLevel.selectedIndex];
      if (option) extendDeadline.min = option.getAttribute('data-deadline') || '';
    };
    extendLevel.addEventListener('change', syncMin);
    syncMin();
    extendForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var error = $('extend-error');
      var level = extendLevel.value;
      var deadline = ZM.wallToIso(extendDeadline.value, TZ);
      var reason = $('extend-reason').value.trim();
      if (!level) { ZM.showError(error, '本活动尚未设置推荐层级'); return; }
      if (!deadline) { ZM.showError(error, '请填写新的截止时间'); return; }
      if (!reason) { ZM.showError(error, '请填写延长的原因'); return; }
      send($('extend-save'), error, 'POST', BASE + '/levels/' + encodeURIComponent(level) + '/extend',
        { deadline: deadline, reason: reason }, '截止时间已延长');
    });
  }

  /* ------------------------------------------------------------------ a unit's own places */

  var unitForm = $('unit-quota-form');
  if (unitForm) {
    var unitSelect = $('unit-quota-unit');
    var fillUnit = function () {
      var own = (DATA.unit_quotas || {})[unitSelect.value] || {};
      ZM.qsa('input[name=quota]', unitForm).forEach(function (input) {
        var value = own[input.getAttribute('data-category')];
        input.value = value === undefined || value === null ? '' : String(value);
      });
    };
    if (unitSelect) { unitSelect.addEventListener('change', fillUnit); fillUnit(); }
    unitForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var error = $('unit-quota-error');
      var quotas = {};
      var problem = '';
      ZM.qsa('input[name=quota]', unitForm).forEach(function (input) {
        var text = input.value.trim();
        var code = input.getAttribute('data-category');
        if (text === '') { quotas[code] = null; return; }
        if (!/^\d+$/.test(text) || Number(text) > 1000) {
          problem = '「' + categoryName(code) + '」的名额应为 0–1000 的整数，留空则恢复通常名额';
          return;
        }
        quotas[code] = Number(text);
      });
      if (problem) { ZM.showError(error, problem); return; }
      send($('unit-quota-save'), error, 'PUT',
        BASE + '/unit-quotas/' + encodeURIComponent(unitSelect.value), { quotas: quotas },
        '单位名额已保存');
    });
  }

  /* ------------------------------------------------------------------ a level's 公示 */

  var publicityForm = $('level-publicity-form');
  if (publicityForm) {
    publicityForm.addEventListener('submit', function (event) {
      event.preventDefault();
      var error = $('level-publicity-error');
      var unit = $('level-publicity-unit').value;
      var daysText = $('level-publicity-days').value.trim();
      var contact = $('level-publicity-contact').value.trim();
      var startText = $('level-publicity-start').value;
      if (!unit) { ZM.showError(error, '没有可公示的主管部门'); return; }
      if (!/^\d+$/.test(daysText) || Number(daysText) < 1 || Number(daysText) > 30) {
        ZM.showError(error, '公示天数应为 1–30 的整数');
        return;
      }
      if (!contact) { ZM.showError(error, '请填写受理异议的联系方式'); return; }
      var body = {
        contact: contact,
        days: Number(daysText),
        working_days: $('level-publicity-working').checked
      };
      if (startText) {
        var start = ZM.wallToIso(startText, TZ);
        if (!start) { ZM.showError(error, '开始时间无效'); return; }
        body.starts_at = start;
      }
      send($('level-publicity-save'), error, 'POST',
        BASE + '/level-publicity/' + encodeURIComponent(unit), body, '公示已发布');
    });
  }
  ZM.qsa('button[data-withdraw]').forEach(function (button) {
    button.addEventListener('click', function () {
      var reason = window.prompt('请填写撤回公示的原因（将记入审计日志）：', '');
      if (reason === null) return;
      reason = reason.trim();
      var error = $('level-publicity-withdraw-error');
      if (!reason) { ZM.showError(error, '撤回公示须填写原因'); return; }
      send(button, error, 'DELETE', BASE + '/level-publicity/' +
        encodeURIComponent(button.getAttribute('data-unit')) + '/' +
        encodeURIComponent(button.getAttribute('data-withdraw')), { reason: reason }, '公示已撤回');
    });
  });
})();
