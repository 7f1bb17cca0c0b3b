/* Zuimei pages: the few helpers every page shares. No framework, no build step. */
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="csrf-token"]');
  var ZM = { csrf: meta ? meta.getAttribute('content') : '' };

  // Chinese sentences for codes a page may meet before the server has said anything.
  ZM.MESSAGES = {
    network_error: '网络不给力，请检查网络后重试',
    server_error: '服务暂时不可用，请稍后重试',
    csrf_failed: '页面已过期，请刷新后重试'
  };

  ZM.qs = function (sel, root) { return (root || document).querySelector(sel); };
  ZM.qsa = function (sel, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(sel));
  };

  /* el('a', {href: '/x', class: 'btn'}, ['text', node]) — text always goes in as text. */
  ZM.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === 'text') node.textContent = value;
      else if (key === 'class') node.className = value;
      else if (key.indexOf('on') === 0 && typeof value === 'function') {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? '' : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === 'string' || typeof child === 'number'
        ? document.createTextNode(String(child)) : child);
    });
    return node;
  };

  ZM.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };

  /* svg('rect', {x: 0, class: 'bar'}, [svg('title', {text: 'label'})]) — el() for SVG: text
     (the `text` key or string children) always goes in as text. */
  var SVG_NS = 'http://www.w3.org/2000/svg';
  ZM.svg = function (tag, attrs, children) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === 'text') node.textContent = value;
      else node.setAttribute(key, String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === 'string' || typeof child === 'number'
        ? document.createTextNode(String(child)) : child);
    });
    return node;
  };

  /* The page's data, from its <script type="application/json" id="..."> block; null without one. */
  ZM.data = function (id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent || 'null'); } catch (e) { return null; }
  };

  /* An error line under a form: shown with the message, hidden without one. */
  ZM.showError = function (node, message) {
    if (!node) return;
    node.textContent = message || '';
    node.hidden = !message;
  };

  /* A button while its request runs: disabled and marked busy. */
  ZM.busy = function (button, on) {
    if (!button) return;
    button.disabled = !!on;
    button.classList.toggle('busy', !!on);
  };

  ZM.errorOf = function (res) {
    var err = res && res.data && res.data.error;
    if (err) return err;
    if (res && res.status === 0) return { code: 'network_error', message: ZM.MESSAGES.network_error };
    return { code: 'server_error', message: ZM.MESSAGES.server_error };
  };

  /* One call to the JSON API. Resolves (never rejects) to {ok, status, data, headers}. */
  ZM.api = function (method, path, body, options) {
    options = options || {};
    var headers = { 'Accept': 'application/json', 'X-CSRF-Token': ZM.csrf };
    Object.keys(options.headers || {}).forEach(function (k) { headers[k] = options.headers[k]; });
    var init = { method: method, headers: headers, credentials: 'same-origin' };
    if (body !== undefined && body !== null) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      var type = response.headers.get('Content-Type') || '';
      var parse = type.indexOf('json') >= 0 ? response.json() : Promise.resolve(null);
      return parse.catch(function () { return null; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data, headers: response.headers };
      });
    }, function () {
      return { ok: false, status: 0, data: null, headers: null };
    });
  };

  var toastTimer = null;
  ZM.toast = function (message, kind) {
    var box = document.getElementById('zm-toast');
    if (!box) return;
    box.textContent = message;
    box.className = 'toast' + (kind ? ' ' + kind : '');
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 3200);
  };

  ZM.pad = function (n) { return (n < 10 ? '0' : '') + n; };

  /* A moment's wall-clock parts (year … second, as strings) in the time zone ``tz``. */
  ZM.partsIn = function (date, tz) {
    var out = {};
    new Intl.DateTimeFormat('en-US', {
      timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false
    }).formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    if (out.hour === '24') out.hour = '00';
    return out;
  };

  /* How far ``tz``'s wall clock is ahead of UTC at the moment ``ms`` (milliseconds). */
  ZM.tzOffsetMs = function (ms, tz) {
    var p = ZM.partsIn(new Date(ms), tz);
    var asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return asUtc - Math.floor(ms / 1000) * 1000;
  };

  /* A datetime-local value read as a wall time in ``tz`` → ISO 8601 with that zone's offset. */
  ZM.wallToIso = function (value, tz) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || '');
    if (!m) return null;
    var guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    var offset = ZM.tzOffsetMs(guess - ZM.tzOffsetMs(guess, tz), tz);
    var minutes = Math.round(offset / 60000);
    var sign = minutes < 0 ? '-' : '+';
    minutes = Math.abs(minutes);
    return m[1] + '-' + m[2] + '-' + m[3] + 'T' + m[4] + ':' + m[5] + ':00' + sign +
      ZM.pad(Math.floor(minutes / 60)) + ':' + ZM.pad(minutes % 60);
  };
  ZM.fmtTime = function (iso) {
    if (!iso) return '';
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    return d.getFullYear() + '-' + ZM.pad(d.getMonth() + 1) + '-' + ZM.pad(d.getDate()) + ' ' +
      ZM.pad(d.getHours()) + ':' + ZM.pad(d.getMinutes());
  };

  ZM.uuid = function () {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  };

  window.ZM = ZM;
})();
