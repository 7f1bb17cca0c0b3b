/* The objection form of the 公示 page: checks the file before anything is sent, then sends the
   same fields as JSON (the file as a data: URL) to the same page route, with the CSRF token.
   Without this script the form posts as multipart and the server answers with a page. */
(function () {
  'use strict';
  var form = document.getElementById('objection-form');
  if (!form) return;
  var page = document.getElementById('objection-page');
  var slug = page.getAttribute('data-slug');
  var errorBox = document.getElementById('objection-error');
  var button = document.getElementById('objection-submit');
  var fileInput = document.getElementById('objection-file');
  var maxBytes = parseInt(form.getAttribute('data-max-bytes') || '0', 10);
  var types = (form.getAttribute('data-types') || '').split(',');
  var token = (form.querySelector('input[name=csrf_token]') || {}).value || '';
  var sending = false;

  function fail(message) {
    ZM.showError(errorBox, message);
    if (message) errorBox.scrollIntoView({ block: 'center' });
  }

  function fileProblem(file) {
    if (!file) return '';
    var name = (file.name || '').toLowerCase();
    var byName = /\.(jpe?g|png|pdf)$/.test(name);
    if (types.indexOf(file.type) < 0 && !byName) return '附件只能是 JPG、PNG 图片或 PDF 文件';
    if (maxBytes && file.size > maxBytes) return '附件不能超过 ' + Math.round(maxBytes / 1048576) + ' MB';
    return '';
  }

  function readFile(file) {
    return new Promise(function (resolve, reject) {
      if (!file) { resolve(null); return; }
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsDataURL(file);
    });
  }

  function localProblem() {
    if (!form.contact_name.value.trim()) return '请填写真实姓名';
    if (!/^[0-9+\- ]{6,20}$/.test(form.contact_phone.value.trim())) return '请填写有效的联系电话';
    var text = form.text.value.trim();
    if (text.length < 5 || text.length > 2000) return '异议理由需 5–2000 字';
    return fileProblem(fileInput.files[0]);
  }

  function done(id) {
    var box = ZM.el('div', { 'class': 'pub-done', role: 'status', 'data-testid': 'objection-filed' }, [
      ZM.el('p', {}, [ZM.el('b', {}, ['异议已收到（编号 #' + id + '）。'])]),
      ZM.el('p', {}, ['评选委员会将核实并作出答复，答复将在「结果公示」页面公布；您的姓名和联系电话不会公开。']),
      ZM.el('p', {}, [ZM.el('a', { 'class': 'btn', href: '/c/' + slug + '/publicity' }, ['返回结果公示'])])
    ]);
    form.parentNode.replaceChild(box, form);
    ZM.showError(errorBox, '');
  }

  fileInput.addEventListener('change', function () { fail(fileProblem(fileInput.files[0])); });

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (sending) return;
    var problem = localProblem();
    if (problem) { fail(problem); return; }
    fail('');
    sending = true;
    ZM.busy(button, true);
    readFile(fileInput.files[0]).then(function (dataUrl) {
      var body = {
        nominee: form.nominee.value || null,
        contact_name: form.contact_name.value.trim(),
        contact_phone: form.contact_phone.value.trim(),
        text: form.text.value.trim(),
        attachment: dataUrl
      };
      return ZM.api('POST', '/c/' + slug + '/publicity/objection', body, { headers: { 'X-CSRF-Token': token } });
    }, function () {
      return { ok: false, status: -1, data: { error: { code: 'bad_attachment', message: '附件读取失败，请重新选择' } } };
    }).then(function (res) {
      sending = false;
      ZM.busy(button, false);
      if (res.ok && res.data) { done(res.data.id); return; }
      fail(ZM.errorOf(res).message);
    });
  });
}());
