/* The phone page: count down before a new code may be asked for. */
(function () {
  'use strict';
  var button = document.getElementById('resend');
  if (!button) return;
  var left = parseInt(button.getAttribute('data-wait') || '0', 10);
  var label = button.textContent;
  function tick() {
    if (left <= 0) { button.disabled = false; button.textContent = label; return; }
    button.disabled = true;
    button.textContent = left + ' 秒后可重新获取';
    left -= 1;
    setTimeout(tick, 1000);
  }
  tick();
  var code = document.getElementById('code');
  if (code) code.addEventListener('input', function () {
    code.value = code.value.replace(/\\D/g, '').slice(0, 6);
  });
}());
