/* Stamped recommendation forms (盖章推荐表), level by level (nominations.level_forms).

   A box marked [data-level-forms] lists a nomination's forms from
   GET /api/v1/nominations/<id>/level-forms: per level (the nominating unit first, then each bureau
   on its way) whether one is required, the current form (who, when, kind, pages) with its download
   link when the caller may fetch it, and a file input where the caller may upload now. The file
   goes up as the request body (POST …/level-forms/<level>); the server reads its type from its
   content, the checks here only spare a useless upload.

   Which nomination: data-nomination="<id>" (the portal's partial), or data-follow="<element id>"
   (the console's review desk): the box follows the detail that element shows, reading the id from
   its 推荐审批表 link, and reloads whenever the detail is drawn again (after a decision too). */
(function () {
  'use strict';
  var el = ZM.el;
  var KINDS = { pdf: 'PDF', jpeg: 'JPG 图片', png: 'PNG 图片' };
  var ACCEPT = 'application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png';
  var NAME_OK = /\.(pdf|jpe?g|png)$/i;
  var TYPE_OK = ['application/pdf', 'image/jpeg', 'image/png'];

  function mb(bytes) { return (bytes / (1024 * 1024)).toFixed(bytes < 1024 * 1024 ? 2 : 1); }
  function size(bytes) { return bytes < 1024 * 1024 ? Math.max(1, Math.round(bytes / 1024)) + ' KB' : mb(bytes) + ' MB'; }

  function when(iso, tz) {
    if (!iso) return '';
    var p = ZM.partsIn(new Date(iso), tz || 'Asia/Shanghai');
    return p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute;
  }

  function describe(form, tz) {
    return when(form.uploaded_at, tz) + ' · ' + form.uploaded_by + ' 上传 · ' +
      (KINDS[form.kind] || form.kind) + (form.kind === 'pdf' ? ' ' + form.pages + ' 页' : '') +
      ' · ' + size(form.size);
  }

  function link(form, text) {
    if (!form.download_url) return null;
    return el('a', { href: form.download_url, class: 'btn small', download: '', 'data-testid': 'level-form-download' }, [text]);
  }

  function problemOf(file, max) {
    var typeOk = TYPE_OK.indexOf(file.type) >= 0 || NAME_OK.test(file.name);
    if (!typeOk) return '盖章推荐表只能是 PDF 文件或 JPG、PNG 图片（所选文件：' + file.name + '）';
    if (file.size === 0) return '所选文件是空的';
    if (file.size > max) return '盖章推荐表不能超过 ' + mb(max) + ' MB，所选文件 ' + mb(file.size) + ' MB';
    return '';
  }

  function upload(nid, level, file) {
    var path = '/api/v1/nominations/' + nid + '/level-forms/' + encodeURIComponent(level) +
      '?name=' + encodeURIComponent(file.name.slice(0, 200));
    var headers = {
      'Accept': 'application/json', 'X-CSRF-Token': ZM.csrf,
      'Content-Type': file.type || 'application/octet-stream'
    };
    return fetch(path, { method: 'POST', headers: headers, body: file, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        var type = response.headers.get('Content-Type') || '';
        var parse = type.indexOf('json') >= 0 ? response.json() : Promise.resolve(null);
        return parse.catch(function () { return null; }).then(function (data) {
          return { ok: response.ok, status: response.status, data: data };
        });
      }, function () { return { ok: false, status: 0, data: null }; });
  }

  function LevelForms(box) {
    this.box = box;
    this.list = box.querySelector('[data-level-forms-list]') || box;
    this.nid = null;
    this.seq = 0;
  }

  LevelForms.prototype.load = function (nid) {
    var self = this;
    var seq = ++this.seq;
    this.nid = nid;
    return ZM.api('GET', '/api/v1/nominations/' + nid + '/level-forms').then(function (res) {
      if (seq !== self.seq) return;  // another nomination was chosen meanwhile
      if (!res.ok) { self.box.hidden = true; return; }
      self.render(res.data);
    });
  };

  LevelForms.prototype.hide = function () {
    this.seq++;
    this.nid = null;
    this.box.hidden = true;
  };

  LevelForms.prototype.render = function (data) {
    var self = this;
    ZM.clear(this.list);
    if (!data || !data.chained) { this.box.hidden = true; return; }
    var pending = data.levels.filter(function (l) { return l.can_upload && l.required && !l.uploaded; })[0];
    if (pending) {
      this.list.appendChild(el('p', { class: 'notice small', 'data-testid': 'level-form-needed' }, [
        '本活动要求' + (pending.unit_level === 'unit' ? '推荐单位上传加盖公章的推荐表，上传后才能提交。'
          : pending.level_label + '上传加盖公章的推荐表，上传后才能推荐上报。')
      ]));
    }
    this.list.appendChild(el('ol', { class: 'history level-forms' }, data.levels.map(function (level) {
      return self.renderLevel(level, data);
    })));
    this.box.hidden = false;
  };

  LevelForms.prototype.renderLevel = function (level, data) {
    var self = this;
    var current = level.current;
    var status = el('p', { class: 'small media-status', role: 'status', 'data-testid': 'level-form-status' });
    var children = [
      el('b', {}, [level.level_label + ' · ' + level.unit]),
      el('span', { class: 'muted small' }, [level.required ? '（须上传盖章推荐表）' : '（不强制上传）']),
      el('div', { class: 'small', 'data-testid': 'level-form-current' }, current
        ? ['已上传：' + describe(current, data.timezone) + ' ', link(current, '下载')]
        : [el('span', { class: 'muted' }, ['尚未上传'])])
    ];
    if (level.history && level.history.length) {
      children.push(el('details', { class: 'small' }, [
        el('summary', {}, ['此前上传 ' + level.history.length + ' 份（已被替换）']),
        el('ul', {}, level.history.map(function (form) {
          return el('li', {}, [describe(form, data.timezone) + '，' + when(form.replaced_at, data.timezone) + ' 被替换 ', link(form, '下载')]);
        }))
      ]));
    }
    if (level.can_upload) {
      var input = el('input', { type: 'file', accept: ACCEPT, 'data-testid': 'level-form-input' });
      input.addEventListener('change', function () {
        var file = input.files && input.files[0];
        if (!file) return;
        var problem = problemOf(file, data.max_bytes);
        if (problem) { ZM.showError(status, problem); input.value = ''; return; }
        input.disabled = true;
        status.hidden = false;
        status.textContent = '正在上传（' + mb(file.size) + ' MB）…';
        var nid = self.nid;
        upload(nid, level.unit_level, file).then(function (res) {
          input.disabled = false;
          input.value = '';
          if (res.ok && res.data) {
            if (nid === self.nid) self.render(res.data);
            // The review desk's refusal of 推荐上报 for want of this form no longer holds.
            ZM.showError(document.getElementById('decision-error'), '');
            ZM.toast('盖章推荐表已上传', 'ok');
            return;
          }
          ZM.showError(status, '上传失败：' + ZM.errorOf(res).message);
        });
      });
      children.push(el('label', { class: 'file-label btn small' }, [current ? '重新上传（替换）' : '上传盖章推荐表', input]));
      children.push(el('p', { class: 'muted small' }, ['PDF 或 JPG、PNG 扫描件，不超过 ' + mb(data.max_bytes) + ' MB；新上传的文件替换当前文件，原文件留档。']));
    }
    children.push(status);
    status.hidden = true;
    return el('li', { 'data-level': level.unit_level, 'data-uploaded': level.uploaded ? 'true' : 'false', 'data-testid': 'level-form-' + level.unit_level }, children);
  };

  /* The console: the nomination the detail panel shows (its 推荐审批表 link), else ?id=. */
  function shownId(detail) {
    var dossier = detail.querySelector('#detail-dossier');
    var match = dossier && /\/nominations\/(\d+)\/dossier/.exec(dossier.getAttribute('href') || '');
    if (match) return match[1];
    return new URL(window.location.href).searchParams.get('id');
  }

  function follow(forms, detail) {
    var queued = false;
    function sync() {
      queued = false;
      var id = detail.hidden ? null : shownId(detail);
      if (!id) { forms.hide(); return; }
      forms.load(id);
    }
    new MutationObserver(function () {
      if (queued) return;
      queued = true;
      Promise.resolve().then(sync);
    }).observe(detail, { childList: true, attributes: true, attributeFilter: ['hidden'] });
    if (!detail.hidden) sync();
  }

  ZM.qsa('[data-level-forms]').forEach(function (box) {
    var forms = new LevelForms(box);
    var nid = box.getAttribute('data-nomination');
    var followed = box.getAttribute('data-follow');
    if (nid) forms.load(nid);
    else if (followed && document.getElementById(followed)) follow(forms, document.getElementById(followed));
  });
})();
