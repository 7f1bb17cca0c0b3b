// The rating page: the form works without this; it only stops a double tap from posting twice.
(function () {
  var form = document.getElementById("rt-form");
  var button = document.getElementById("rt-submit");
  if (!form || !button) return;
  form.addEventListener("submit", function () {
    button.disabled = true;
    button.textContent = "正在提交…";
  });
})();
