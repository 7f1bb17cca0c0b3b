/* The unit's 群众评议 page: upload a file of encounters (multipart to the API, with the session
   cookie and the CSRF header; the report page opens once the file is taken) and answer a
   「不满意」 case (findings and actions; the case closes). Data in #appraisal-unit-data. */
(function () {
  'use strict';
  var ZM = window.ZM;
  var DATA = ZM && ZM.data('appraisal-unit-data');
  if (!DATA) return;

  function errorText(res) {
    if (res.status === 413) return '文件过大，请分批上传';
    return ZM.errorOf(res).message;
  }

  var form = document.getElementById('upload-form');
  if (form) {
    var input = document.getElementById('upload-file');
    var error = document.getElementById('upload-error');
    var go = document.getElementById('upload-go');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var file = input.files && input.files[0];
      if (!file) { ZM.showError(error, '请先选择要上传的文件'); return; }
      ZM.showError(error, '');
      ZM.busy(go, true);
      go.textContent = '正在上传…';
      var body = new FormData();
      body.append('file', file, file.name);
      fetch(DATA.upload_url, {
        method: 'POST', body: body, credentials: 'same-origin',
        headers: { 'Accept': 'application/json', 'X-CSRF-Token': ZM.csrf }
      }).then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          return { ok: response.ok, status: response.status, data: data };
        });
      }, function () { return { ok: false, status: 0, data: null }; }).then(function (res) {
        if (res.ok && res.data) {
          window.location.assign(DATA.report_url + res.data.upload_id);
          return;
        }
        ZM.busy(go, false);
        go.textContent = '上传';
        ZM.showError(error, errorText(res));
      });
    });
  }

  ZM.qsa('form.au-respond').forEach(function (box) {
    var line = ZM.qs('.field-error', box);
    var button = ZM.qs('button[type=submit]', box);
    box.addEventListener('submit', function (event) {
      event.preventDefault();
      var findings = box.elements.findings.value.trim();
      var actions = box.elements.actions.value.trim();
      if (!findings || !actions) { ZM.showError(line, '请填写核实情况和整改措施'); return; }
      ZM.showError(line, '');
      ZM.busy(button, true);
      var id = box.getAttribute('data-case');
      ZM.api('POST', DATA.case_url + id + '/response', { findings: findings, actions: actions })
        .then(function (res) {
          if (res.ok) { window.location.assign(DATA.done_url + id + '#case-' + id); return; }
          ZM.busy(button, false);
          ZM.showError(line, errorText(res));
        });
    });
  });
})();
