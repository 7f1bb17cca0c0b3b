/* Console accounts page: each row's forms call /api/v1/accounts/<username>/{password,
   deactivate,activate} with the cookie and the CSRF header (ZM.api), then reload. */
(function () {
  'use strict';
  var ZM = window.ZM;
  var DONE = { password: '密码已重置，该账号需用新密码重新登录', deactivate: '账号已停用', activate: '账号已启用' };

  function submit(event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains('account-action')) return;
    event.preventDefault();
    var row = form.closest('tr');
    var username = row.getAttribute('data-username');
    var action = form.getAttribute('data-action');
    var body = {};
    Array.prototype.forEach.call(form.elements, function (input) {
      if (input.name && input.value.trim() !== '') body[input.name] = input.value;
    });
    if (action === 'deactivate' && !window.confirm('确定停用账号 ' + username + '？其现有登录会立即失效。')) return;
    var button = form.querySelector('button');
    ZM.busy(button, true);
    ZM.api('POST', '/api/v1/accounts/' + encodeURIComponent(username) + '/' + action, body)
      .then(function (res) {
        ZM.busy(button, false);
        if (!res.ok) { ZM.toast(ZM.errorOf(res).message, 'error'); return; }
        ZM.toast(DONE[action], 'ok');
        setTimeout(function () { window.location.reload(); }, 800);
      });
  }

  document.addEventListener('submit', submit);
})();
