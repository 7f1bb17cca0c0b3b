/* 我的投票: check a receipt in the browser against the published nominee roots and campaign
   root, by the algorithm of docs/receipts.md (SHA-256 through Web Crypto). Without Web Crypto
   (an old browser, or a page not served over HTTPS) the 核验 buttons stay hidden and the
   receipt is still a download to check with `python -m voting.receipt_check`. */
(function () {
  'use strict';
  var root = document.getElementById('my-votes');
  if (!root || root.getAttribute('data-receipts') !== '1') return;
  var subtle = window.crypto && window.crypto.subtle;
  if (!subtle || !window.TextEncoder) return;
  var slug = root.getAttribute('data-slug');
  var summary = null;

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return (b < 16 ? '0' : '') + b.toString(16);
    }).join('');
  }

  function bytes(hexText) {
    var out = new Uint8Array(hexText.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hexText.substr(i * 2, 2), 16);
    return out;
  }

  function sha256(data) { return subtle.digest('SHA-256', data).then(hex); }
  function sha256Text(text) { return sha256(new TextEncoder().encode(text)); }

  function node(left, right) {
    var data = new Uint8Array(65);
    data[0] = 1;
    data.set(bytes(left), 1);
    data.set(bytes(right), 33);
    return sha256(data);
  }

  function fold(leaf, path) {
    return path.reduce(function (pending, step) {
      return pending.then(function (current) {
        if (step.side === 'left') return node(step.hash, current);
        if (step.side === 'right') return node(current, step.hash);
        throw new Error('bad side');
      });
    }, Promise.resolve(leaf));
  }

  function campaignRoot(pub) {
    var nominees = pub.nominees.slice().sort(function (a, b) {
      return a.number < b.number ? -1 : a.number > b.number ? 1 : 0;
    });
    var text = 'zuimei-receipt-root-v1|' + pub.campaign + '|' + pub.chain_index + '|' + pub.chain_head + '\n';
    nominees.forEach(function (n) { text += n.number + '|' + n.count + '|' + n.root + '\n'; });
    return sha256Text(text);
  }

  function loadSummary() {
    if (summary) return Promise.resolve(summary);
    return ZM.api('GET', '/api/v1/campaigns/' + slug + '/receipts').then(function (res) {
      if (!res.ok) throw new Error(ZM.errorOf(res).message);
      summary = res.data;
      return summary;
    });
  }

  /* Resolves to the words to show; every step of docs/receipts.md "Checking a receipt". */
  function check(voteId) {
    var path = '/api/v1/campaigns/' + slug + '/votes/mine/' + encodeURIComponent(voteId) + '/receipt';
    return Promise.all([ZM.api('GET', path), loadSummary()]).then(function (got) {
      var res = got[0], pub = got[1];
      if (!res.ok) throw new Error(ZM.errorOf(res).message);
      var receipt = res.data;
      var entry = pub.nominees.filter(function (n) { return n.number === receipt.nominee; })[0];
      if (!entry) return { ok: false, text: '公示数据中没有该候选人的选票' };
      var text = ['zuimei-receipt-leaf-v1', receipt.campaign, receipt.vote_id, receipt.nominee, receipt.secret].join('|');
      return sha256Text(text).then(function (leaf) {
        if (leaf !== receipt.leaf) return { ok: false, text: '凭证内容与其哈希不符' };
        return fold(leaf, receipt.path).then(function (top) {
          if (top !== entry.root) return { ok: false, text: '凭证路径与公示的候选人根哈希不符' };
          return campaignRoot(pub).then(function (all) {
            if (all !== pub.root) return { ok: false, text: '公示的总根哈希与各候选人数据不符' };
            return {
              ok: true,
              text: '核验通过：这张选票已计入 ' + receipt.nominee + ' 号候选人公示的 ' + entry.count + ' 张有效票。'
            };
          });
        });
      });
    });
  }

  ZM.qsa('.mv-item').forEach(function (item) {
    var button = ZM.qs('.mv-check', item);
    var result = ZM.qs('.mv-result', item);
    if (!button) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      ZM.busy(button, true);
      check(item.getAttribute('data-vote')).then(function (outcome) {
        result.textContent = outcome.text;
        result.className = 'mv-result small ' + (outcome.ok ? 'ok' : 'bad');
      }, function (err) {
        result.textContent = '暂时无法核验：' + (err && err.message ? err.message : '请稍后再试');
        result.className = 'mv-result small bad';
      }).then(function () {
        result.hidden = false;
        ZM.busy(button, false);
      });
    });
  });
})();
