/* The console's 群众评议 report page: the trend of the last months as an inline SVG line chart
   (满意率, 满意占比, 回复率; a month without answers leaves a gap, never a 0), drawn here without
   any library. Data arrives in <script type="application/json" id="appraisal-data">; choosing a
   unit reads GET …/reports/trend?unit=<code> with the staff cookie (ZM.api). */
(function () {
  'use strict';
  var ZM = window.ZM;
  var DATA = ZM && ZM.data('appraisal-data');
  if (!DATA) return;
  var SVG = 'http://www.w3.org/2000/svg';
  var W = 640, H = 260, L = 44, R = 36, T = 16, B = 48;
  var SERIES = [
    { key: 'satisfaction_rate', label: '满意率', color: '#1a7f37' },
    { key: 'satisfied_rate', label: '满意占比', color: '#0969da' },
    { key: 'response_rate', label: '回复率', color: '#bf8700' }
  ];

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function draw(points) {
    var box = document.getElementById('trend-chart');
    if (!box) return;
    while (box.firstChild) box.removeChild(box.firstChild);
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', 'data-testid': 'trend-svg' });
    var n = points.length;
    var x = function (i) { return L + (n > 1 ? i * (W - L - R) / (n - 1) : (W - L - R) / 2); };
    var y = function (v) { return T + (1 - v) * (H - T - B); };
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      svg.appendChild(el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#d0d7de' }));
      svg.appendChild(el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11 },
        Math.round(v * 100) + '%'));
    });
    points.forEach(function (p, i) {
      svg.appendChild(el('text', { x: x(i), y: H - B + 16, 'text-anchor': 'middle', 'font-size': 11 },
        p.month));
      svg.appendChild(el('text', { x: x(i), y: H - B + 30, 'text-anchor': 'middle', 'font-size': 10,
        fill: '#57606a' }, p.answers + ' 条'));
    });
    SERIES.forEach(function (s, k) {
      var d = '', pen = false;
      points.forEach(function (p, i) {
        var v = p[s.key];
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? ' L ' : ' M ') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
        var dot = el('circle', { cx: x(i), cy: y(v), r: 3, fill: s.color, 'data-series': s.key });
        dot.appendChild(el('title', {}, s.label + ' ' + p.month + '：' + (v * 100).toFixed(1) + '%'));
        svg.appendChild(dot);
      });
      if (d) {
        svg.appendChild(el('path', { d: d.trim(), fill: 'none', stroke: s.color, 'stroke-width': 2,
          'data-series': s.key }));
      }
      var lx = L + k * 110;
      svg.appendChild(el('rect', { x: lx, y: H - 12, width: 10, height: 10, fill: s.color }));
      svg.appendChild(el('text', { x: lx + 14, y: H - 3, 'font-size': 11 }, s.label));
    });
    box.appendChild(svg);
  }

  draw(DATA.trend || []);
  var pick = document.getElementById('trend-unit');
  if (pick) {
    pick.addEventListener('change', function () {
      var url = DATA.trend_url + '?months=' + (DATA.trend || []).length +
        (pick.value ? '&unit=' + encodeURIComponent(pick.value) : '');
      ZM.api('GET', url).then(function (res) {
        if (res.ok && res.data) draw(res.data.months);
        else ZM.toast(ZM.errorOf(res).message, 'error');
      });
    });
  }
})();
