/* The H5 voting page: countdown, load more, the vote (identity, refusals, captcha), the vote
   buttons' states, share card. The page body is public and cached; this visitor's state
   (identity, CSRF token, votes left, whom they voted for today) comes from GET /c/<slug>/me;
   POST /c/<slug>/beacon gives the browser the server's signed device cookie and counts the page
   view (and a nominee page's view). */
(function () {
  'use strict';
  var root = document.getElementById('h5');
  if (!root) return;
  var slug = root.getAttribute('data-slug');
  var stage = root.getAttribute('data-stage');
  var identity = 'pending';   // until /me answers: ready | wechat | device | none
  var inWechat = /MicroMessenger/i.test(navigator.userAgent || '');
  var clockSkew = 0;          // the server's clock minus ours, from /me

  // What a voter reads for each refusal; the server's own sentence is the fallback.
  var REFUSALS = {
    daily_quota_exhausted: '今天的票已经投完了，明天再来吧',
    nominee_daily_limit: '今天已经为TA投过票了，明天再来支持TA吧',
    voting_closed: '现在不在投票时间内，投票未计入',
    nominee_not_found: '没有找到这位候选人，请刷新页面',
    nominee_frozen: '该候选人的票数正在核查中，暂停投票，请稍后再试',
    rate_limited: '投票太快了，请稍等片刻再试',
    invalid_voter: '投票身份已失效，请重新进入页面',
    challenge_failed: '验证码不正确，请重新输入',
    challenge_expired: '验证码已过期，请换一张',
    provider_disabled: '请在微信中打开本页面参与投票',
    phone_required: '本活动需验证手机号后投票',
    service_unavailable: '投票人数较多，系统繁忙，本次投票未计入，请稍后再试',
    csrf_failed: '页面已过期，请刷新后再投票',
    network_error: '网络不给力，本次投票未确认，请检查网络后重试'
  };

  function refusalText(error, res) {
    var text = REFUSALS[error.code] || error.message || ZM.MESSAGES.server_error;
    if (error.code === 'rate_limited') {
      var wait = res && res.headers && res.headers.get('Retry-After');
      if (wait) text = '投票太快了，请 ' + wait + ' 秒后再试';
    }
    return text;
  }

  /* --- countdown ------------------------------------------------------------------------ */
  var countdown = document.getElementById('countdown-value');
  if (countdown) {
    var target = new Date(root.getAttribute(stage === 'before' ? 'data-voting-start' : 'data-voting-end')).getTime();
    var tick = function () {
      var left = Math.max(0, Math.floor((target - (Date.now() + clockSkew)) / 1000));
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
      var m = Math.floor(left % 3600 / 60), s = left % 60;
      countdown.textContent = (d ? d + '天' : '') + ZM.pad(h) + '时' + ZM.pad(m) + '分' + ZM.pad(s) + '秒';
      if (left === 0) { clearInterval(timer); setTimeout(function () { location.reload(); }, 1500); }
    };
    var timer = setInterval(tick, 1000);
    tick();
  }

  /* --- vote buttons come disabled from the server: a tap before this script ran did nothing -- */
  /* Their state is this voter's (the body is everyone's): 已投 once today's votes for that
     nominee are in, 明日再来 once the day's votes are spent. A tap still goes to the server
     (a new day may have begun); its answer is what the voter reads. */
  var voter = { remaining: null, voted: {} };
  var perNominee = parseInt(root.getAttribute('data-votes-per-nominee') || '1', 10) || 1;
  var LABELS = { voted: '已投', spent: '明日再来', '': '投票' };
  function buttonState(number) {
    if ((voter.voted[number] || 0) >= perNominee) return 'voted';
    if (voter.remaining === 0) return 'spent';
    return '';
  }
  function applyStates(scope) {
    if (stage !== 'open') return;
    ZM.qsa('button.vote[data-number]', scope || document).forEach(function (b) {
      var next = buttonState(b.getAttribute('data-number'));
      if (next === (b.getAttribute('data-state') || '')) return;
      if (next) b.setAttribute('data-state', next); else b.removeAttribute('data-state');
      b.classList.toggle('primary', !next);
      b.textContent = LABELS[next];
    });
  }
  function enableVotes(scope) {
    if (stage !== 'open') return;
    ZM.qsa('button.vote[data-number]', scope).forEach(function (b) { b.disabled = false; });
    applyStates(scope);
  }
  enableVotes(document);

  /* --- load more (and keep loading as the list scrolls into view) ------------------------- */
  var cards = document.getElementById('cards');
  var loading = false;
  function loadMore(button) {
    if (loading) return;
    loading = true;
    button.classList.add('busy');
    button.textContent = '加载中';
    fetch(button.getAttribute('data-next'), { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        button.parentNode.removeChild(button);
        // Server-rendered and escaped by the same template as the first page.
        cards.insertAdjacentHTML('beforeend', html);
        enableVotes(cards);
        watchMore();
      })
      .catch(function () {
        button.classList.remove('busy');
        button.textContent = '加载失败，点击重试';
      })
      .then(function () { loading = false; });
  }
  var observer = null;
  function watchMore() {
    var button = document.getElementById('load-more');
    if (!button) return;
    if ('IntersectionObserver' in window) {
      if (!observer) {
        observer = new IntersectionObserver(function (entries) {
          entries.forEach(function (e) { if (e.isIntersecting) loadMore(e.target); });
        }, { rootMargin: '200px' });
      }
      observer.observe(button);
    }
  }
  if (cards) {
    cards.addEventListener('click', function (event) {
      var button = event.target.closest && event.target.closest('#load-more');
      if (!button) return;
      event.preventDefault();
      loadMore(button);
    });
    watchMore();
  }

  /* --- votes left today ------------------------------------------------------------------- */
  function showRemaining(n) {
    var box = document.getElementById('remaining');
    var value = document.getElementById('remaining-value');
    if (!box || !value || typeof n !== 'number') return;
    value.textContent = String(n);
    box.hidden = false;
  }
  /* --- this visitor's state: identity, CSRF token, server clock, votes left --------------- */
  function setIdentity(value) {
    identity = value;
    root.setAttribute('data-identity', value);
  }
  function fallbackIdentity() { return inWechat ? 'wechat' : 'device'; }
  var state = ZM.api('GET', '/c/' + encodeURIComponent(slug) + '/me').then(function (res) {
    if (!res.ok || !res.data) { setIdentity(fallbackIdentity()); return false; }
    ZM.csrf = res.data.csrf_token || '';
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) meta.setAttribute('content', ZM.csrf);
    var now = new Date(res.data.server_now).getTime();
    if (!isNaN(now)) clockSkew = now - Date.now();
    inWechat = !!res.data.in_wechat;
    setIdentity(res.data.identity);
    showRemaining(res.data.remaining_today);
    if (typeof res.data.remaining_today === 'number') voter.remaining = res.data.remaining_today;
    if (res.data.voted_today) voter.voted = res.data.voted_today;
    if (res.data.votes_per_nominee_per_day) perNominee = res.data.votes_per_nominee_per_day;
    applyStates(document);
    return true;
  });

  /* --- every page calls the beacon: the server's device cookie, and a nominee page's view --- */
  /* (the body itself is cached, so neither can come with it)                                   */
  var shown = root.getAttribute('data-number');
  ZM.api('POST', '/c/' + encodeURIComponent(slug) + '/beacon', shown ? { number: shown } : {});

  /* --- identity --------------------------------------------------------------------------- */
  function deviceId() {
    var id = null;
    try { id = localStorage.getItem('zm_device'); } catch (e) { id = null; }
    if (!id) {
      id = ZM.uuid();
      try { localStorage.setItem('zm_device', id); } catch (e) { /* private mode: per page */ }
    }
    return id;
  }
  /* a phone browser proves a number by text message (and 一人一号 campaigns ask it of everyone) */
  function goToPhone(reason) {
    location.href = '/c/' + encodeURIComponent(slug) + '/phone?' + (reason ? 'reason=' + reason + '&' : '') +
      'next=' + encodeURIComponent(location.pathname + location.search);
  }
  function ensureIdentity() {
    if (identity === 'pending') return state.then(ensureIdentity);
    if (identity === 'ready') return Promise.resolve(true);
    if (identity === 'wechat') {
      var next = location.pathname + location.search;
      location.href = '/api/v1/wechat/oauth/start?campaign=' + encodeURIComponent(slug) +
        '&next=' + encodeURIComponent(next);
      return Promise.resolve(false);
    }
    if (identity === 'sms') { goToPhone(''); return Promise.resolve(false); }
    if (identity === 'device') {
      return ZM.api('POST', '/c/' + encodeURIComponent(slug) + '/voter', { device_id: deviceId() })
        .then(function (res) {
          if (res.ok) { setIdentity('ready'); return true; }
          ZM.toast(refusalText(ZM.errorOf(res), res), 'error');
          return false;
        });
    }
    ZM.toast('请在微信中打开本页面参与投票', 'error');
    return Promise.resolve(false);
  }

  /* --- the vote --------------------------------------------------------------------------- */
  function setCount(number, votes) {
    if (typeof votes !== 'number') return;
    ZM.qsa('.vote-count[data-number="' + number + '"]').forEach(function (node) {
      node.textContent = String(votes);
    });
  }

  function castVote(button, key, challengePass, attempt) {
    var number = button.getAttribute('data-number');
    var headers = { 'Idempotency-Key': key };
    if (challengePass) headers['X-Challenge-Pass'] = challengePass;
    return ZM.api('POST', '/api/v1/campaigns/' + encodeURIComponent(slug) + '/votes',
      { nominee: number }, { headers: headers })
      .then(function (res) {
        var refusal = document.getElementById('vote-refusal');
        if (res.ok) {
          if (refusal) refusal.textContent = '';
          setCount(number, res.data.nominee_votes);
          showRemaining(res.data.remaining_today);
          var left = res.data.remaining_today;
          // More left than before this vote: a new day began since the page learnt its state.
          if (typeof voter.remaining === 'number' && left >= voter.remaining) voter.voted = {};
          voter.voted[number] = (voter.voted[number] || 0) + 1;
          if (typeof left === 'number') voter.remaining = left;
          applyStates(document);
          var name = button.getAttribute('data-name') || '';
          var status = res.data.status === 'pending' ? '（待核验）' : '';
          ZM.toast('投票成功' + status + '！感谢您为' + name + '投票，今日还可投 ' + res.data.remaining_today + ' 票', 'ok');
          return;
        }
        var error = ZM.errorOf(res);
        // Lost on the way or refused by an overloaded gateway: not counted, or counted once.
        if ((res.status === 0 || res.status === 502 || res.status === 503 || res.status === 504) &&
            attempt < 2) {
          // Same Idempotency-Key: if the first try was counted, the retry counts nothing.
          return new Promise(function (resolve) { setTimeout(resolve, 1500); })
            .then(function () { return castVote(button, key, challengePass, attempt + 1); });
        }
        if (error.code === 'challenge_required') {
          return openCaptcha().then(function (pass) {
            if (pass) return castVote(button, ZM.uuid(), pass, 0);
          });
        }
        if (error.code === 'phone_required') { goToPhone('required'); return; }
        if (error.code === 'invalid_voter' && attempt < 1) {
          setIdentity(fallbackIdentity());
          return ensureIdentity().then(function (ok) {
            if (ok) return castVote(button, ZM.uuid(), challengePass, attempt + 1);
          });
        }
        if (error.details && typeof error.details.remaining_today === 'number') {
          showRemaining(error.details.remaining_today);
          voter.remaining = error.details.remaining_today;
        }
        if (error.code === 'daily_quota_exhausted') voter.remaining = 0;
        if (error.code === 'nominee_daily_limit') voter.voted[number] = perNominee;
        applyStates(document);
        ZM.toast(refusalText(error, res), 'error');
        if (refusal) refusal.textContent = refusalText(error, res);
      });
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button.vote[data-number]');
    if (!button) return;
    event.preventDefault();
    if (button.classList.contains('busy')) return; // a double tap sends one vote
    button.classList.add('busy');
    button.setAttribute('aria-busy', 'true');
    ensureIdentity()
      .then(function (ok) { if (ok) return castVote(button, ZM.uuid(), null, 0); })
      .then(function () {
        // A short pause after the answer, so a nervous second tap is not a second vote.
        setTimeout(function () { button.classList.remove('busy'); button.removeAttribute('aria-busy'); }, 600);
      });
  });

  /* --- the captcha dialog for challenge_required ------------------------------------------ */
  var captcha = document.getElementById('captcha');
  var captchaState = null;
  function loadChallenge() {
    var image = document.getElementById('captcha-image');
    var error = document.getElementById('captcha-error');
    error.hidden = true;
    return ZM.api('POST', '/api/v1/challenges').then(function (res) {
      if (!res.ok) {
        error.textContent = refusalText(ZM.errorOf(res), res);
        error.hidden = false;
        return;
      }
      captchaState.id = res.data.challenge_id;
      image.src = res.data.image;
      captcha.setAttribute('data-challenge', res.data.challenge_id);
    });
  }
  function closeCaptcha(result) {
    captcha.hidden = true;
    var state = captchaState;
    captchaState = null;
    if (state) state.resolve(result);
  }
  function openCaptcha() {
    return new Promise(function (resolve) {
      captchaState = { resolve: resolve, id: null };
      document.getElementById('captcha-answer').value = '';
      captcha.hidden = false;
      loadChallenge().then(function () { document.getElementById('captcha-answer').focus(); });
    });
  }
  if (captcha) {
    document.getElementById('captcha-cancel').addEventListener('click', function () { closeCaptcha(null); });
    document.getElementById('captcha-refresh').addEventListener('click', loadChallenge);
    document.getElementById('captcha-form').addEventListener('submit', function (event) {
      event.preventDefault();
      if (!captchaState || !captchaState.id) return;
      var submit = document.getElementById('captcha-submit');
      if (submit.disabled) return;
      submit.disabled = true;
      var answer = document.getElementById('captcha-answer').value.trim();
      ZM.api('POST', '/api/v1/challenges/' + encodeURIComponent(captchaState.id), { answer: answer })
        .then(function (res) {
          submit.disabled = false;
          if (res.ok) { closeCaptcha(res.data.challenge_pass); return; }
          var error = document.getElementById('captcha-error');
          error.textContent = refusalText(ZM.errorOf(res), res);
          error.hidden = false;
          document.getElementById('captcha-answer').value = '';
          loadChallenge();
        });
    });
  }

  /* --- WeChat share card (JS-SDK, only inside WeChat with the official account set up) ----- */
  if (root.getAttribute('data-wechat-sdk') === '1' && inWechat) {
    var sdk = document.createElement('script');
    sdk.src = 'https://res.wx.qq.com/open/js/jweixin-1.6.0.js';
    sdk.onload = function () {
      var pageUrl = location.href.split('#')[0];
      ZM.api('GET', '/api/v1/wechat/jssdk?url=' + encodeURIComponent(pageUrl)).then(function (res) {
        if (!res.ok || !window.wx) return;
        window.wx.config({
          debug: false, appId: res.data.appId, timestamp: res.data.timestamp,
          nonceStr: res.data.nonceStr, signature: res.data.signature,
          jsApiList: ['updateAppMessageShareData', 'updateTimelineShareData']
        });
        var photo = document.querySelector('.profile .photo.large');
        var share = {
          title: root.getAttribute('data-share-title'),
          desc: root.getAttribute('data-share-desc'),
          link: pageUrl,
          imgUrl: photo && photo.src ? photo.src : location.origin + '/assets/share.png'
        };
        window.wx.ready(function () {
          window.wx.updateAppMessageShareData(share);
          window.wx.updateTimelineShareData({ title: share.title, link: share.link, imgUrl: share.imgUrl });
        });
      });
    };
    document.head.appendChild(sdk);
  }
})();
