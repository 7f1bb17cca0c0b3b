/* Unit portal: list actions (submit, withdraw), the nomination form (validation mirroring the
   API schema, save, submit, resubmit), the photo gallery (upload up to six, choose the cover,
   delete) and the resumable (tus) video upload.
   Plain ES2015, no framework; every write goes through /api/v1 with the CSRF header. */
(function () {
  'use strict';
  var ZM = window.ZM;
  var FLASH_KEY = 'zm.portal.flash';
  var UPLOAD_PREFIX = 'zm.upload.';
  var CHUNK = 1024 * 1024;
  var MAX_ATTEMPTS = 8;
  var TUS = '1.0.0';

  // --- small helpers ----------------------------------------------------------------------------

  function flashLater(message, kind) {
    try { sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message: message, kind: kind || 'ok' })); } catch (e) { /* private mode */ }
  }

  function showFlash() {
    var raw = null;
    try { raw = sessionStorage.getItem(FLASH_KEY); sessionStorage.removeItem(FLASH_KEY); } catch (e) { raw = null; }
    if (!raw) return;
    var flash;
    try { flash = JSON.parse(raw); } catch (e) { return; }
    var box = ZM.qs('#flash');
    if (box) {
      box.textContent = flash.message;
      box.className = flash.kind === 'error' ? 'alert' : 'notice';
      box.hidden = false;
    }
    ZM.toast(flash.message, flash.kind === 'error' ? 'error' : 'ok');
  }

  function pageData() { return ZM.data('portal-data'); }

  /* What the server counts: CRLF as one character, surrounding blanks trimmed, code points. */
  function normalise(value) { return String(value || '').replace(/\r\n?/g, '\n').trim(); }
  function textLength(value) { return Array.from(normalise(value)).length; }

  function mb(bytes) { return (bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0); }

  function setStatus(node, message, kind) {
    if (!node) return;
    node.textContent = message || '';
    node.className = node.className.replace(/\s*\b(error|ok|busy)\b/g, '') + (kind ? ' ' + kind : '');
  }

  function utf8Base64(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = '';
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary);
  }

  /* A fetch with the session cookie and the CSRF header, for bodies that are not JSON. */
  function rawRequest(method, path, body, headers) {
    var all = { 'Accept': 'application/json', 'X-CSRF-Token': ZM.csrf };
    Object.keys(headers || {}).forEach(function (k) { all[k] = headers[k]; });
    return fetch(path, { method: method, headers: all, body: body, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        var type = response.headers.get('Content-Type') || '';
        var parse = type.indexOf('json') >= 0 ? response.json() : Promise.resolve(null);
        return parse.catch(function () { return null; }).then(function (data) {
          return { ok: response.ok, status: response.status, data: data, headers: response.headers };
        });
      }, function () { return { ok: false, status: 0, data: null, headers: null }; });
  }

  // --- dialogs ----------------------------------------------------------------------------------

  /* A modal confirm; resolves to {ok, comment}. Buttons #dialog-ok / #dialog-cancel. */
  function dialog(options) {
    return new Promise(function (resolve) {
      var comment = null;
      var previous = document.activeElement;
      var body = [ZM.el('h2', { id: 'dialog-title', text: options.title })];
      (options.messages || []).forEach(function (text) { body.push(ZM.el('p', { text: text })); });
      if (options.warning) body.push(ZM.el('p', { class: 'dialog-warning', id: 'dialog-warning', text: options.warning }));
      if (options.comment) {
        comment = ZM.el('textarea', { id: 'dialog-comment', maxlength: '1000', rows: '3' });
        body.push(ZM.el('label', { 'for': 'dialog-comment' }, [options.comment, comment]));
      }
      var cancel = ZM.el('button', { type: 'button', class: 'btn', id: 'dialog-cancel', text: options.cancelText || '取消' });
      var ok = ZM.el('button', {
        type: 'button', class: 'btn ' + (options.danger ? 'danger' : 'primary'), id: 'dialog-ok', text: options.okText || '确定'
      });
      body.push(ZM.el('div', { class: 'actions' }, [cancel, ok]));
      var box = ZM.el('div', { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'dialog-title' }, body);
      var backdrop = ZM.el('div', { class: 'dialog-backdrop', id: 'dialog' }, [box]);
      function close(result) {
        document.removeEventListener('keydown', onKey);
        if (backdrop.parentNode) backdrop.parentNode.removeChild(backdrop);
        if (previous && previous.focus) previous.focus();
        resolve(result);
      }
      function onKey(ev) { if (ev.key === 'Escape') close({ ok: false }); }
      cancel.addEventListener('click', function () { close({ ok: false }); });
      ok.addEventListener('click', function () { close({ ok: true, comment: comment ? comment.value.trim() : '' }); });
      backdrop.addEventListener('click', function (ev) { if (ev.target === backdrop) close({ ok: false }); });
      document.addEventListener('keydown', onKey);
      document.body.appendChild(backdrop);
      (comment || ok).focus();
    });
  }

  function confirmWithdraw(name) {
    return dialog({
      title: '撤回推荐',
      messages: ['撤回「' + name + '」后，这份推荐材料将不再参加评选，也不能恢复；占用的名额会释放。'],
      comment: '撤回说明（选填）',
      okText: '撤回',
      danger: true
    });
  }

  function withdraw(id, comment) {
    return ZM.api('POST', '/api/v1/nominations/' + id + '/withdraw', { comment: comment || null });
  }

  // --- the list ---------------------------------------------------------------------------------

  function initList(root) {
    var busy = false;
    root.addEventListener('click', function (ev) {
      var button = ev.target.closest('button[data-action]');
      if (!button || busy) return;
      var id = button.getAttribute('data-id');
      var name = button.getAttribute('data-name') || '';
      var action = button.getAttribute('data-action');
      var ask = action === 'submit'
        ? dialog({
          title: '提交推荐材料',
          messages: ['提交「' + name + '」后进入审核，审核期间不能修改。确定提交吗？'],
          okText: '提交'
        })
        : confirmWithdraw(name);
      ask.then(function (answer) {
        if (!answer.ok) return;
        busy = true;
        button.disabled = true;
        var call = action === 'submit'
          ? ZM.api('POST', '/api/v1/nominations/' + id + '/submit')
          : withdraw(id, answer.comment);
        call.then(function (res) {
          busy = false;
          if (res.ok) {
            flashLater(action === 'submit' ? '已提交「' + name + '」，请等待审核' : '已撤回「' + name + '」');
            window.location.reload();
            return;
          }
          button.disabled = false;
          ZM.toast(ZM.errorOf(res).message, 'error');
        });
      });
    });
  }

  // --- the form ---------------------------------------------------------------------------------

  function Form(form, data) {
    this.form = form;
    this.data = data;
    this.busy = false;
    this.errorBox = ZM.qs('#form-error');
    this.saveStatus = ZM.qs('#save-status');
    this.inputs = ZM.qsa('input[name], select[name], textarea[name]', form);
    this.byName = {};
    var self = this;
    this.inputs.forEach(function (input) { self.byName[input.name] = input; });
  }

  Form.prototype.label = function (input) { return input.getAttribute('data-label') || input.name; };

  /* The schema's rules, as the page was given them (data-* attributes). '' when fine. */
  Form.prototype.check = function (input) {
    if (input.disabled) return '';
    var label = this.label(input);
    var required = input.hasAttribute('data-required');
    var raw = input.value;
    var num = function (name) {
      var v = input.getAttribute(name);
      return v === null || v === '' ? null : Number(v);
    };
    if (input.getAttribute('data-type') === 'integer') {
      raw = raw.trim();
      if (raw === '') {
        if (input.validity && input.validity.badInput) return label + '请填写整数';
        return required ? '请填写' + label : '';
      }
      if (!/^-?\d+$/.test(raw)) return label + '请填写整数';
      var n = parseInt(raw, 10);
      var min = num('data-min'); var max = num('data-max');
      if ((min !== null && n < min) || (max !== null && n > max)) {
        return label + '应在 ' + (min !== null ? min : '') + '–' + (max !== null ? max : '') + ' 之间';
      }
      return '';
    }
    if (input.getAttribute('data-type') === 'phone' && raw.trim() !== '') {
      if (!/^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$/.test(raw.replace(/ /g, ''))) {
        return label + '应为手机号码或带区号的固定电话';
      }
      return '';
    }
    if (input.tagName === 'SELECT') {
      if (!raw) return required ? '请选择' + label : '';
      return '';
    }
    var length = textLength(raw);
    if (length === 0) return required ? '请填写' + label : '';
    var minLength = num('data-min-length'); var maxLength = num('data-max-length');
    if (minLength !== null && length < minLength) return label + '至少 ' + minLength + ' 个字';
    if (maxLength !== null && length > maxLength) {
      return label + '最多 ' + maxLength + ' 个字，现在 ' + length + ' 个字，请删减 ' + (length - maxLength) + ' 个字';
    }
    return '';
  };

  Form.prototype.setError = function (input, message) {
    var box = document.getElementById(input.name + '-error');
    if (box) { box.textContent = message || ''; box.hidden = !message; }
    input.classList.toggle('invalid', !!message);
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  };

  Form.prototype.validate = function () {
    var self = this;
    var first = null;
    this.inputs.forEach(function (input) {
      var message = self.check(input);
      self.setError(input, message);
      if (message && !first) first = input;
    });
    if (first) {
      this.showFormError('请按提示修改标红的内容后再保存');
      first.focus();
      if (first.scrollIntoView) first.scrollIntoView({ block: 'center' });
      return false;
    }
    this.showFormError('');
    return true;
  };

  Form.prototype.showFormError = function (message) {
    if (!this.errorBox) return;
    this.errorBox.textContent = message || '';
    this.errorBox.hidden = !message;
  };

  /* The body for the API: enabled fields only; the unit only when an admin creates. The
     campaign's own fields (named extra.<key>) go inside body.extra. */
  Form.prototype.payload = function () {
    var body = {};
    var creating = this.data.mode === 'new';
    this.inputs.forEach(function (input) {
      if (input.disabled) return;
      if (input.getAttribute('data-send') === 'create' && !creating) return;
      var value = input.value;
      var target = body;
      var name = input.name;
      if (name.indexOf('extra.') === 0) {
        body.extra = body.extra || {};
        target = body.extra;
        name = name.slice(6);
      }
      if (input.getAttribute('data-type') === 'integer') {
        target[name] = value.trim() === '' ? null : parseInt(value.trim(), 10);
      } else if (textLength(value) === 0 && input.hasAttribute('data-nullable')) {
        target[name] = null;
      } else {
        target[name] = value;
      }
    });
    return body;
  };

  /* marshmallow's English messages, said in Chinese (with the limits the message names). */
  Form.prototype.translate = function (input, message) {
    message = String(message);
    if (/[\u4e00-\u9fff]/.test(message)) return message;
    var label = input ? this.label(input) : '';
    var m;
    if (/Missing data|may not be null/i.test(message)) return '请填写' + label;
    if (/Unknown field/i.test(message)) return '不能修改' + (label || '此项');
    if (/valid integer/i.test(message)) return label + '请填写整数';
    if (/one of/i.test(message)) return '请选择' + label;
    if ((m = /length must be between (\d+) and (\d+)/i.exec(message))) return label + '应为 ' + m[1] + '–' + m[2] + ' 个字';
    if ((m = /shorter than minimum length (\d+)/i.exec(message))) return label + '至少 ' + m[1] + ' 个字';
    if ((m = /longer than maximum length (\d+)/i.exec(message))) return label + '最多 ' + m[1] + ' 个字';
    if ((m = /greater than or equal to (-?\d+) and less than or equal to (-?\d+)/i.exec(message))) {
      return label + '应在 ' + m[1] + '–' + m[2] + ' 之间';
    }
    if ((m = /greater than or equal to (-?\d+)/i.exec(message))) return label + '不能小于 ' + m[1];
    if ((m = /less than or equal to (-?\d+)/i.exec(message))) return label + '不能大于 ' + m[1];
    return label + '填写的内容不符合要求';
  };

  Form.prototype.showServerError = function (res) {
    var err = ZM.errorOf(res);
    var fields = err.details && err.details.fields;
    var self = this;
    var first = null;
    var leftover = [];
    if (fields && typeof fields === 'object') {
      Object.keys(fields).forEach(function (name) {
        var messages = [].concat(fields[name]).map(function (m) {
          return typeof m === 'string' ? m : JSON.stringify(m);
        });
        var input = self.byName[name];
        if (input && !input.disabled) {
          self.setError(input, messages.map(function (m) { return self.translate(input, m); }).join('；'));
          if (!first) first = input;
        } else {
          leftover.push((input ? self.label(input) : name) + '：' + messages.map(function (m) { return self.translate(input, m); }).join('；'));
        }
      });
    }
    var message = err.message + (leftover.length ? '（' + leftover.join('；') + '）' : '');
    this.showFormError(message);
    ZM.toast(err.message, 'error');
    if (first) first.focus();
    else if (this.errorBox && this.errorBox.scrollIntoView) this.errorBox.scrollIntoView({ block: 'center' });
  };

  Form.prototype.setBusy = function (busy, message) {
    this.busy = busy;
    ZM.qsa('#save, #submit, #withdraw').forEach(function (b) {
      if (busy) { b.setAttribute('data-was-disabled', b.disabled ? '1' : ''); b.disabled = true; } else if (b.hasAttribute('data-was-disabled')) {
        b.disabled = b.getAttribute('data-was-disabled') === '1';
        b.removeAttribute('data-was-disabled');
      }
    });
    if (message !== undefined) setStatus(this.saveStatus, message, busy ? 'busy' : '');
  };

  /* Create (POST) or update (PATCH); resolves to the nomination or null. */
  Form.prototype.save = function () {
    var self = this;
    var creating = this.data.mode === 'new';
    var request = creating
      ? ZM.api('POST', '/api/v1/campaigns/' + encodeURIComponent(this.data.campaign) + '/nominations', this.payload())
      : ZM.api('PATCH', '/api/v1/nominations/' + this.data.nomination_id, this.payload());
    return request.then(function (res) {
      if (res.ok) return res.data;
      self.showServerError(res);
      return null;
    });
  };

  Form.prototype.updateCounter = function (counter) {
    var input = document.getElementById(counter.getAttribute('data-for'));
    if (!input) return;
    var max = parseInt(counter.getAttribute('data-max'), 10);
    var n = textLength(input.value);
    counter.textContent = n + ' / ' + max;
    counter.classList.toggle('over', n > max);
  };

  Form.prototype.bind = function (media) {
    var self = this;
    var counters = ZM.qsa('.counter[data-for]', this.form);
    counters.forEach(function (c) { self.updateCounter(c); });
    this.inputs.forEach(function (input) {
      var touched = false;
      var onChange = function () {
        counters.forEach(function (c) { if (c.getAttribute('data-for') === input.name) self.updateCounter(c); });
        if (touched || input.classList.contains('invalid')) self.setError(input, self.check(input));
      };
      input.addEventListener('input', onChange);
      input.addEventListener('change', onChange);
      input.addEventListener('blur', function () { touched = true; self.setError(input, self.check(input)); });
    });
    this.form.addEventListener('submit', function (ev) { ev.preventDefault(); self.onSave(); });
    var save = ZM.qs('#save'); var submit = ZM.qs('#submit'); var withdrawButton = ZM.qs('#withdraw');
    if (save) save.addEventListener('click', function () { self.onSave(); });
    if (submit) submit.addEventListener('click', function () { self.onSubmit(media); });
    if (withdrawButton) withdrawButton.addEventListener('click', function () { onWithdraw(self.data, self); });
  };

  Form.prototype.onSave = function () {
    var self = this;
    if (this.busy || !this.validate()) return;
    this.setBusy(true, '正在保存…');
    this.save().then(function (nomination) {
      if (!nomination) { self.setBusy(false, ''); return; }
      if (self.data.mode === 'new') {
        flashLater('草稿已保存，现在可以上传照片和视频');
        window.location.assign('/portal/nominations/' + nomination.id);
        return;
      }
      self.setBusy(false, '已保存 ' + ZM.fmtTime(new Date().toISOString()));
      setStatus(self.saveStatus, self.saveStatus.textContent, 'ok');
      ZM.toast('草稿已保存', 'ok');
    });
  };

  Form.prototype.onSubmit = function (media) {
    var self = this;
    if (this.busy || !this.validate()) return;
    var resubmit = this.data.status === 'returned';
    var pending = media ? media.pendingMessage() : '';
    dialog({
      title: resubmit ? '重新提交推荐材料' : '提交推荐材料',
      messages: ['提交后进入审核，审核期间不能修改。确定提交吗？'],
      warning: pending ? pending + '现在提交，这段视频将不会被采用；建议等视频处理完成后再提交。' : '',
      okText: pending ? '仍然提交' : (resubmit ? '重新提交' : '提交')
    }).then(function (answer) {
      if (!answer.ok) return;
      self.setBusy(true, '正在保存并提交…');
      self.save().then(function (nomination) {
        if (!nomination) { self.setBusy(false, ''); return; }
        return ZM.api('POST', '/api/v1/nominations/' + nomination.id + '/submit').then(function (res) {
          var target = '/portal/nominations/' + nomination.id;
          if (res.ok) {
            if (media) media.stop();
            flashLater(resubmit ? '已重新提交，请等待审核' : '已提交，请等待审核');
            window.location.assign(target);
            return;
          }
          var message = ZM.errorOf(res).message;
          if (self.data.mode === 'new') {
            // The draft exists now: carry on from its own page, never create it twice.
            flashLater('草稿已保存，但提交未成功：' + message, 'error');
            window.location.assign(target);
            return;
          }
          self.setBusy(false, '');
          self.showServerError(res);
        });
      });
    });
  };

  function onWithdraw(data, form) {
    var name = (ZM.qs('#nominee-name') || {}).textContent || '';
    confirmWithdraw(name).then(function (answer) {
      if (!answer.ok) return;
      if (form) form.setBusy(true, '正在撤回…');
      withdraw(data.nomination_id, answer.comment).then(function (res) {
        if (res.ok) {
          flashLater('已撤回「' + name + '」');
          window.location.assign(data.list_url || '/portal');
          return;
        }
        if (form) form.setBusy(false, '');
        ZM.toast(ZM.errorOf(res).message, 'error');
      });
    });
  }

  // --- photo ------------------------------------------------------------------------------------

  var PHOTO_TYPES = ['image/jpeg', 'image/png', 'image/webp'];

  function checkPhoto(file, max) {
    var typeOk = PHOTO_TYPES.indexOf(file.type) >= 0 || (!file.type && /\.(jpe?g|png|webp)$/i.test(file.name));
    if (!typeOk) return '照片只支持 JPG、PNG 或 WebP 格式（所选文件：' + file.name + '）';
    if (file.size === 0) return '所选照片是空文件';
    if (file.size > max) return '照片不能超过 ' + mb(max) + ' MB，所选文件 ' + mb(file.size) + ' MB';
    return '';
  }

  /* The gallery: up to data.photos_max photos, the cover first (as the API lists them). Each
     change (upload, cover, delete) answers or re-reads the list, and the list is drawn again. */
  function initPhoto(data) {
    var list = ZM.qs('#photo-gallery');
    if (!list) return;
    var input = ZM.qs('#photo-input');
    var status = ZM.qs('#photo-status');
    var current = ZM.qs('#photo-current');
    var preview = ZM.qs('#photo-preview');
    var empty = ZM.qs('#photo-empty');
    var count = ZM.qs('#photo-count');
    var base = '/api/v1/nominations/' + data.nomination_id;
    var max = data.photos_max || 6;
    var photos = (data.photos || []).slice();
    var busy = false;
    var previewUrl = null;

    function clearPreview() {
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = null;
      preview.hidden = true;
      preview.removeAttribute('src');
    }

    function setBusy(on) {
      busy = on;
      if (input) input.disabled = on || photos.length >= max;
      ZM.qsa('button[data-action]', list).forEach(function (b) { b.disabled = on; });
    }

    function item(photo, index) {
      var actions = input ? ZM.el('span', { class: 'photo-actions' }, [
        photo.cover ? null : ZM.el('button', { type: 'button', class: 'btn-link', 'data-action': 'cover', text: '设为封面' }),
        ZM.el('button', { type: 'button', class: 'btn-link danger', 'data-action': 'delete', text: '删除' })
      ]) : null;
      return ZM.el('li', {
        class: 'photo-item' + (photo.cover ? ' is-cover' : ''), 'data-id': photo.id, 'data-testid': 'photo-item-' + photo.id
      }, [
        ZM.el('img', { src: photo.thumb_url || photo.photo_url, alt: '照片 ' + (index + 1), loading: 'lazy', width: 72, height: 72 }),
        photo.cover ? ZM.el('span', { class: 'cover-badge', text: '封面' }) : null,
        actions
      ]);
    }

    function render(items) {
      photos = items || [];
      var cover = photos.filter(function (p) { return p.cover; })[0] || photos[0] || null;
      if (cover) {
        current.src = cover.thumb_url || cover.photo_url;
        current.hidden = false;
      } else {
        current.hidden = true;
        current.removeAttribute('src');
      }
      empty.hidden = !!cover || !preview.hidden;
      if (count) count.textContent = photos.length + ' / ' + max + ' 张';
      ZM.clear(list);
      photos.forEach(function (p, i) { list.appendChild(item(p, i)); });
      list.hidden = !photos.length;
      setBusy(busy);
    }

    function reload() {
      return ZM.api('GET', base + '/photos').then(function (res) {
        if (res.ok && res.data) render(res.data.items);
      });
    }

    /* One file after the other: a refusal (the limit reached elsewhere, a bad file) stops there. */
    function uploadAll(files, done) {
      if (!files.length) { done(0, ''); return; }
      var file = files[0];
      clearPreview();
      previewUrl = URL.createObjectURL(file);
      preview.src = previewUrl;
      preview.hidden = false;
      empty.hidden = true;
      setStatus(status, '正在上传照片「' + file.name + '」（' + mb(file.size) + ' MB）…', 'busy');
      rawRequest('POST', base + '/photo', file, {
        'Content-Type': file.type || 'application/octet-stream'
      }).then(function (res) {
        clearPreview();
        if (!(res.ok && res.data)) { done(0, ZM.errorOf(res).message); return; }
        uploadAll(files.slice(1), function (more, problem) { done(more + 1, problem); });
      });
    }

    if (input) {
      input.addEventListener('change', function () {
        var files = Array.prototype.slice.call(input.files || []);
        input.value = '';
        if (!files.length || busy) return;
        for (var i = 0; i < files.length; i++) {
          var problem = checkPhoto(files[i], data.photo_max_bytes);
          if (problem) { setStatus(status, problem, 'error'); return; }
        }
        var room = max - photos.length;
        var left = files.length > room ? files.length - room : 0;
        if (room <= 0) { setStatus(status, '最多上传 ' + max + ' 张照片，请先删除不需要的照片', 'error'); return; }
        setBusy(true);
        uploadAll(files.slice(0, room), function (sent, problem) {
          setBusy(false);
          reload().then(function () {
            if (problem) setStatus(status, '照片上传失败：' + problem, 'error');
            else if (left) setStatus(status, '已上传 ' + sent + ' 张；最多 ' + max + ' 张，另 ' + left + ' 张未上传', 'error');
            else setStatus(status, sent > 1 ? '已上传 ' + sent + ' 张照片' : '照片已上传', 'ok');
          });
        });
      });
    }

    list.addEventListener('click', function (ev) {
      var button = ev.target.closest('button[data-action]');
      var row = button && button.closest('li[data-id]');
      if (!row || busy) return;
      var id = row.getAttribute('data-id');
      if (button.getAttribute('data-action') === 'cover') {
        setBusy(true);
        ZM.api('PUT', base + '/photos/' + id + '/cover').then(function (res) {
          setBusy(false);
          if (res.ok && res.data) { render(res.data.items); setStatus(status, '已设为封面', 'ok'); return; }
          setStatus(status, '设置封面失败：' + ZM.errorOf(res).message, 'error');
        });
        return;
      }
      var isCover = row.classList.contains('is-cover');
      dialog({
        title: '删除照片',
        messages: [isCover && photos.length > 1 ? '这是封面照片，删除后下一张照片将成为封面。确定删除吗？' : '确定删除这张照片吗？'],
        okText: '删除',
        danger: true
      }).then(function (answer) {
        if (!answer.ok) return;
        setBusy(true);
        ZM.api('DELETE', base + '/photos/' + id).then(function (res) {
          setBusy(false);
          if (res.ok && res.data) { render(res.data.items); setStatus(status, '照片已删除', 'ok'); return; }
          setStatus(status, '删除失败：' + ZM.errorOf(res).message, 'error');
        });
      });
    });
  }

  // --- video: resumable upload, then the transcoding status ---------------------------------------

  var VIDEO_TYPES = ['video/mp4', 'video/quicktime', 'video/3gpp', 'video/x-m4v'];

  function checkVideo(file, max) {
    var typeOk = VIDEO_TYPES.indexOf(file.type) >= 0 || /\.(mp4|mov|m4v|3gp)$/i.test(file.name);
    if (!typeOk) return '视频只支持 MP4 或 MOV 格式（所选文件：' + file.name + '）';
    if (file.size === 0) return '所选视频是空文件';
    if (file.size > max) return '视频不能超过 ' + mb(max) + ' MB，所选文件 ' + mb(file.size) + ' MB';
    return '';
  }

  function uploadKey(nominationId, file) {
    return UPLOAD_PREFIX + nominationId + ':' + file.name + ':' + file.size + ':' + file.lastModified;
  }

  function readStored(key) {
    try {
      var value = JSON.parse(localStorage.getItem(key) || 'null');
      return value && value.url ? value : null;
    } catch (e) { return null; }
  }

  function writeStored(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* full or off */ } }
  function dropStored(key) { try { localStorage.removeItem(key); } catch (e) { /* off */ } }

  /* Notes of uploads nobody came back for (another nomination, weeks ago) are dropped. */
  function dropOldNotes() {
    var cutoff = Date.now() - 14 * 24 * 3600 * 1000;
    var old = [];
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (!key || key.indexOf(UPLOAD_PREFIX) !== 0) continue;
        var value = readStored(key);
        if (!value || !(value.at > cutoff)) old.push(key);
      }
    } catch (e) { return; }
    old.forEach(dropStored);
  }

  function storedForNomination(nominationId) {
    var prefix = UPLOAD_PREFIX + nominationId + ':';
    var out = [];
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key && key.indexOf(prefix) === 0) out.push({ key: key, value: readStored(key) });
      }
    } catch (e) { return []; }
    return out;
  }

  /* tus HEAD: how many bytes the server holds. {status, offset, length}. */
  function headUpload(url) {
    return fetch(url, {
      method: 'HEAD', credentials: 'same-origin', cache: 'no-store', headers: { 'Tus-Resumable': TUS }
    }).then(function (response) {
      return {
        status: response.status,
        offset: parseInt(response.headers.get('Upload-Offset'), 10),
        length: parseInt(response.headers.get('Upload-Length'), 10)
      };
    }, function () { return { status: 0, offset: NaN, length: NaN }; });
  }

  function renderVideo(asset) {
    var box = ZM.qs('#video-box');
    if (!box || !asset || !asset.renditions || !asset.renditions.length) return;
    var sources = asset.renditions.slice().sort(function (a, b) { return (b.height || 0) - (a.height || 0); })
      .map(function (r) { return ZM.el('source', { src: r.url, type: 'video/mp4' }); });
    sources.push(document.createTextNode('您的浏览器不能播放此视频。'));
    var video = ZM.el('video', {
      id: 'video-player', 'data-testid': 'video-player', controls: true, playsinline: true,
      preload: 'metadata', poster: asset.poster_url || null
    }, sources);
    ZM.clear(box).appendChild(video);
  }

  function VideoUpload(data) {
    this.data = data;
    // What to say per status while the video is processed: media.labels, from the server.
    this.progressLabels = (data.labels && data.labels.video_progress) || {};
    this.input = ZM.qs('#video-input');
    this.box = ZM.qs('#video-upload');
    this.progress = ZM.qs('#video-progress');
    this.percent = ZM.qs('#video-percent');
    this.status = ZM.qs('#video-status');
    this.pauseButton = ZM.qs('#video-pause');
    this.resumeButton = ZM.qs('#video-resume');
    this.file = null;
    this.key = null;
    this.url = null;
    this.assetId = null;
    this.offset = 0;
    this.xhr = null;
    this.timer = null;
    this.attempt = 0;
    this.restarted = false;
    this.active = false;   // bytes are (or should be) moving
    this.paused = false;
    this.polling = null;   // asset id being watched while it transcodes
    this.pollTimer = null;
    this.waitingOnline = null;
  }

  VideoUpload.prototype.say = function (message, kind) { setStatus(this.status, message, kind); };

  VideoUpload.prototype.showProgress = function (bytes) {
    if (!this.file) return;
    var size = this.file.size;
    var pct = size ? Math.min(100, Math.floor((bytes / size) * 1000) / 10) : 100;
    this.progress.value = pct;
    this.progress.setAttribute('aria-valuetext', pct + '%');
    this.percent.textContent = pct.toFixed(pct >= 100 ? 0 : 1) + '%';
  };

  /* A message for the submit dialog when the video is not yet in place, else ''. */
  VideoUpload.prototype.pendingMessage = function () {
    if (this.active || this.paused) return '视频还没有上传完。';
    if (this.polling) return '视频还在处理中。';
    return '';
  };

  VideoUpload.prototype.bind = function () {
    var self = this;
    if (this.input) {
      this.input.addEventListener('change', function () {
        var file = self.input.files && self.input.files[0];
        if (file) self.start(file);
      });
    }
    if (this.pauseButton) this.pauseButton.addEventListener('click', function () { self.pause(); });
    if (this.resumeButton) this.resumeButton.addEventListener('click', function () { self.resume(); });
    window.addEventListener('online', function () {
      if (self.waitingOnline) { var go = self.waitingOnline; self.waitingOnline = null; go(); }
    });
    this.restore();
  };

  /* After a reload: forget finished uploads, tell about an unfinished one, watch transcoding. */
  VideoUpload.prototype.restore = function () {
    var self = this;
    var data = this.data;
    var receiving = {};
    dropOldNotes();
    (data.receiving || []).forEach(function (a) { receiving[String(a.id)] = a; });
    var unfinished = null;
    storedForNomination(data.nomination_id).forEach(function (entry) {
      if (!entry.value || !receiving[String(entry.value.asset)]) { dropStored(entry.key); return; }
      unfinished = unfinished || entry.value;
    });
    var pending = data.pending_video;
    if (pending && (pending.status === 'uploaded' || pending.status === 'processing')) {
      this.watch(pending.id);
    } else if (unfinished && this.input) {
      var server = receiving[String(unfinished.asset)];
      var pct = unfinished.size ? Math.floor((server.received / unfinished.size) * 100) : 0;
      this.say('上次的视频「' + unfinished.name + '」已上传 ' + pct + '%，请重新选择同一个文件，将从断点继续上传。', 'busy');
    }
  };

  VideoUpload.prototype.stop = function () {
    this.active = false;
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    this.polling = null;
    if (this.xhr) { this.xhr.abort(); this.xhr = null; }
  };

  VideoUpload.prototype.start = function (file) {
    var self = this;
    var problem = checkVideo(file, this.data.video_max_bytes);
    if (problem) { this.say(problem, 'error'); this.input.value = ''; return; }
    this.stop();
    this.file = file;
    this.key = uploadKey(this.data.nomination_id, file);
    this.url = null;
    this.assetId = null;
    this.offset = 0;
    this.attempt = 0;
    this.restarted = false;
    this.paused = false;
    this.active = true;
    this.input.disabled = true;
    this.box.hidden = false;
    this.pauseButton.hidden = false;
    this.resumeButton.hidden = true;
    this.showProgress(0);
    this.say('正在准备上传「' + file.name + '」（' + mb(file.size) + ' MB）…', 'busy');
    var stored = readStored(this.key);
    if (!stored) {
      // No note in this browser: the server may still hold an unfinished upload of this file.
      var match = (this.data.receiving || []).filter(function (a) {
        return a.name === file.name && a.size === file.size;
      })[0];
      if (match) stored = { url: match.upload_url, asset: match.id };
    }
    if (!stored) { this.create(); return; }
    this.url = stored.url;
    this.assetId = stored.asset;
    headUpload(this.url).then(function (head) {
      if (!self.active) return;
      if (head.status === 200 && !isNaN(head.offset) && head.length === file.size) {
        self.offset = head.offset;
        self.showProgress(self.offset);
        if (self.offset >= file.size) { self.finished(); return; }
        self.say('从断点继续上传：已上传 ' + self.percent.textContent, 'busy');
        self.send();
      } else if (head.status === 0 || head.status >= 500) {
        self.retryLater();
      } else {
        dropStored(self.key);
        self.create();
      }
    });
  };

  VideoUpload.prototype.create = function () {
    var self = this;
    var file = this.file;
    ZM.api('POST', '/api/v1/nominations/' + this.data.nomination_id + '/video', null, {
      headers: {
        'Tus-Resumable': TUS,
        'Upload-Length': String(file.size),
        'Upload-Metadata': 'filename ' + utf8Base64(file.name)
      }
    }).then(function (res) {
      if (!self.active) return;
      if (res.status === 201 && res.data) {
        self.url = (res.headers && res.headers.get('Location')) || res.data.upload_url;
        self.assetId = res.data.id;
        self.offset = 0;
        self.attempt = 0;
        writeStored(self.key, {
          url: self.url, asset: self.assetId, name: file.name, size: file.size,
          lastModified: file.lastModified, at: Date.now()
        });
        self.send();
      } else if (res.status === 0 || res.status >= 500) {
        self.retryLater(function () { self.create(); });
      } else {
        self.fail('无法开始上传：' + ZM.errorOf(res).message);
      }
    });
  };

  VideoUpload.prototype.send = function () {
    var self = this;
    if (!this.active || this.paused) return;
    var file = this.file;
    if (this.offset >= file.size) { this.finished(); return; }
    var start = this.offset;
    var chunk = file.slice(start, Math.min(file.size, start + CHUNK));
    var xhr = new XMLHttpRequest();
    this.xhr = xhr;
    xhr.open('PATCH', this.url, true);
    xhr.withCredentials = true;
    xhr.timeout = 120000;
    xhr.setRequestHeader('Tus-Resumable', TUS);
    xhr.setRequestHeader('Upload-Offset', String(start));
    xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
    xhr.setRequestHeader('X-CSRF-Token', ZM.csrf);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', function (ev) {
      if (xhr === self.xhr) self.showProgress(start + ev.loaded);
    });
    xhr.addEventListener('load', function () {
      if (xhr !== self.xhr) return;
      self.xhr = null;
      var serverOffset = parseInt(xhr.getResponseHeader('Upload-Offset'), 10);
      var body = null;
      try { body = JSON.parse(xhr.responseText || 'null'); } catch (e) { body = null; }
      var code = body && body.error ? body.error.code : '';
      if (xhr.status === 204) {
        self.offset = isNaN(serverOffset) ? start + chunk.size : serverOffset;
        self.attempt = 0;
        self.showProgress(self.offset);
        self.say('正在上传「' + file.name + '」… ' + self.percent.textContent, 'busy');
        self.send();
      } else if (xhr.status === 409 && code === 'offset_mismatch') {
        // The server holds a different offset (a lost answer): continue from its count.
        var expected = !isNaN(serverOffset) ? serverOffset : (body.error.details || {}).expected_offset;
        self.attempt += 1;
        if (typeof expected !== 'number' || self.attempt > MAX_ATTEMPTS) { self.retryLater(); return; }
        self.offset = expected;
        self.send();
      } else if (xhr.status === 409 && code === 'upload_complete') {
        self.finished();
      } else if (xhr.status === 409 && code === 'upload_busy') {
        self.retryLater();
      } else if (xhr.status === 404 && !self.restarted) {
        // The upload record is gone: start this file afresh once.
        self.restarted = true;
        dropStored(self.key);
        self.create();
      } else if (xhr.status === 0 || xhr.status >= 500) {
        self.retryLater();
      } else {
        var err = body && body.error ? body.error : { message: ZM.MESSAGES.server_error };
        // A lapsed login or page keeps the upload: after logging in again it resumes.
        var keep = xhr.status === 401 || code === 'csrf_failed';
        self.fail('上传失败：' + err.message + (keep ? '。重新登录或刷新页面后，选择同一文件即可从断点继续。' : ''), keep);
      }
    });
    var onFailure = function () {
      if (xhr !== self.xhr) return;
      self.xhr = null;
      self.retryLater();
    };
    xhr.addEventListener('error', onFailure);
    xhr.addEventListener('timeout', onFailure);
    xhr.send(chunk);
  };

  /* Back off and try again, asking the server for its offset first. */
  VideoUpload.prototype.retryLater = function (again) {
    var self = this;
    if (!this.active || this.paused) return;
    this.attempt += 1;
    var next = again || function () { self.sync(); };
    if (this.attempt > MAX_ATTEMPTS) {
      this.pause('上传中断，已暂停。已上传 ' + this.percent.textContent + '，点击“继续上传”从断点继续。');
      return;
    }
    if (navigator.onLine === false) {
      this.say('网络已断开，恢复后将自动继续上传（已上传 ' + this.percent.textContent + '）…', 'busy');
      this.waitingOnline = function () { if (self.active && !self.paused) next(); };
      return;
    }
    var delay = Math.min(30000, 1000 * Math.pow(2, this.attempt - 1)) + Math.floor(Math.random() * 500);
    this.say('网络不稳定，' + Math.round(delay / 1000) + ' 秒后自动重试（第 ' + this.attempt + ' 次），已上传 ' +
      this.percent.textContent + '…', 'busy');
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { if (self.active && !self.paused) next(); }, delay);
  };

  VideoUpload.prototype.sync = function () {
    var self = this;
    if (!this.url) { this.create(); return; }
    headUpload(this.url).then(function (head) {
      if (!self.active || self.paused) return;
      if (head.status === 200 && !isNaN(head.offset)) {
        self.offset = head.offset;
        self.showProgress(self.offset);
        if (self.offset >= self.file.size) self.finished();
        else self.send();
      } else if (head.status === 404 && !self.restarted) {
        self.restarted = true;
        dropStored(self.key);
        self.create();
      } else if (head.status === 0 || head.status >= 500) {
        self.retryLater();
      } else {
        self.fail('上传已失效，请重新选择文件上传');
      }
    });
  };

  VideoUpload.prototype.pause = function (message) {
    this.paused = true;
    clearTimeout(this.timer);
    this.waitingOnline = null;
    if (this.xhr) { var xhr = this.xhr; this.xhr = null; xhr.abort(); }
    this.pauseButton.hidden = true;
    this.resumeButton.hidden = false;
    this.say(message || '已暂停，已上传 ' + this.percent.textContent + '。点击“继续上传”从断点继续。', 'busy');
  };

  VideoUpload.prototype.resume = function () {
    if (!this.file) return;
    this.paused = false;
    this.active = true;
    this.attempt = 0;
    this.pauseButton.hidden = false;
    this.resumeButton.hidden = true;
    this.say('正在继续上传…', 'busy');
    this.sync();
  };

  VideoUpload.prototype.fail = function (message, keep) {
    this.active = false;
    this.paused = false;
    clearTimeout(this.timer);
    if (this.key && !keep) dropStored(this.key);
    this.input.disabled = false;
    this.input.value = '';
    this.box.hidden = true;
    this.say(message, 'error');
  };

  VideoUpload.prototype.finished = function () {
    this.active = false;
    this.paused = false;
    if (this.key) dropStored(this.key);
    this.showProgress(this.file ? this.file.size : 0);
    this.pauseButton.hidden = true;
    this.resumeButton.hidden = true;
    this.input.disabled = false;
    this.input.value = '';
    this.say('上传完成，等待服务器处理视频…', 'busy');
    this.watch(this.assetId);
  };

  /* Poll the asset until it is ready or failed: every 3 s for two minutes, then every 10 s. */
  VideoUpload.prototype.watch = function (assetId) {
    var self = this;
    var started = Date.now();
    clearTimeout(this.pollTimer);
    this.polling = assetId;
    function again(extra) {
      var wait = (Date.now() - started < 120000 ? 3000 : 10000) + (extra || 0);
      self.pollTimer = setTimeout(poll, wait);
    }
    function poll() {
      if (self.polling !== assetId) return;
      ZM.api('GET', '/api/v1/media/' + assetId).then(function (res) {
        if (self.polling !== assetId) return;
        if (!res.ok) {
          if (res.status === 0 || res.status >= 500) { again(5000); return; }
          self.polling = null;
          self.say('无法获取视频处理状态：' + ZM.errorOf(res).message, 'error');
          return;
        }
        var asset = res.data;
        if (asset.status === 'ready') {
          self.polling = null;
          renderVideo(asset);
          if (self.box) self.box.hidden = true;
          self.say((self.progressLabels.ready || asset.status) + (asset.duration ? '（时长 ' + Math.round(asset.duration) + ' 秒）' : ''), 'ok');
        } else if (asset.status === 'failed') {
          self.polling = null;
          if (self.box) self.box.hidden = true;
          var reason = String(asset.failure_reason || '文件无法处理').replace(/[。.]+$/, '');
          self.say((self.progressLabels.failed || asset.status) + '：' + reason + (self.data.editable ? '。请换一个文件重新上传。' : '。'), 'error');
        } else {
          self.say(self.progressLabels[asset.status] || asset.status, 'busy');
          again();
        }
      });
    }
    poll();
  };

  // --- start --------------------------------------------------------------------------------------

  function init() {
    showFlash();
    var list = document.getElementById('portal-list');
    if (list) initList(list);
    var data = pageData();
    if (!data) return;
    var media = null;
    if (data.nomination_id && ZM.qs('#video-status')) {
      media = new VideoUpload(data);
      media.bind();
    }
    if (data.nomination_id) initPhoto(data);
    var formNode = document.getElementById('nomination-form');
    if (formNode) new Form(formNode, data).bind(media);
    else {
      var withdrawButton = ZM.qs('#withdraw');
      if (withdrawButton) withdrawButton.addEventListener('click', function () { onWithdraw(data, null); });
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
