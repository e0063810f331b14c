/* The saved-widget renderer (@jupyter-widgets/html-manager) typesets widget labels with the
   MathJax 2 call `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`. The book loads MathJax 3,
   which has no `Hub`, so on a page with both maths and widgets every label threw a TypeError.
   This gives MathJax 3 that one call. Loaded before the renderer on pages with widget state
   (`nb_ipywidgets_js` in _config.yml); the renderer draws on `load`, after DOMContentLoaded. */
(function () {
  function install() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup) return; // no MathJax 3 on this page (or MathJax 2)
    mj.Hub = {
      Queue: function () {
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
            mj.startup.promise
              .then(function () { return window.MathJax.typesetPromise([job[2]]); })
              .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
          }
        });
      },
    };
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", install);
  } else {
    install();
  }
})();
