// davmail web UI: optional niceties; every page works without them.
(function () {
  'use strict';
  // Fit the message frame to its content (the frame is same-origin and
  // runs no script of its own).
  var frame = document.getElementById('body-frame');
  function fit() {
    try {
      var d = frame.contentDocument;
      if (d && d.body) {
        // The body's own height: the document's is at least the frame's.
        frame.style.height = Math.max(d.body.offsetHeight + 4, 192) + 'px';
      }
    } catch (e) { /* keep the CSS height */ }
  }
  if (frame) {
    frame.addEventListener('load', fit);
    window.addEventListener('resize', fit);
    if (frame.contentDocument && frame.contentDocument.readyState === 'complete') { fit(); }
  }
  // Mark an opened unread message read, with the page's CSRF token.
  var autoread = document.getElementById('autoread');
  if (autoread && window.fetch && window.URLSearchParams) {
    fetch(autoread.action, {
      method: 'POST', credentials: 'same-origin',
      body: new URLSearchParams(new FormData(autoread))
    }).then(function (r) {
      var b = document.getElementById('readbtn');
      if (r.status === 204 && b) { b.value = 'unread'; b.textContent = 'Mark unread'; }
    }).catch(function () {});
  }
  // Ask before a deletion that cannot be undone.
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (ev) {
      if (!window.confirm(f.getAttribute('data-confirm'))) { ev.preventDefault(); }
    });
  });
})();
