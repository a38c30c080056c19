// The page's language, chosen before the first paint (a classic script in <head>, so the
// page never shows in the wrong language or direction first): the reader's own choice
// from the language switch, else the browser's first language we have, else English.
// i18n.js reads the result from <html lang>.
(function () {
  var SUPPORTED = { en: 'ltr', ar: 'rtl' };
  var chosen = null;
  try {
    chosen = localStorage.getItem('majlis.lang');
  } catch (e) {
    chosen = null; // storage blocked: fall back to the browser's languages
  }
  if (!SUPPORTED[chosen]) {
    chosen = 'en';
    var preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (var i = 0; i < preferred.length; i++) {
      var base = String(preferred[i]).toLowerCase().split('-')[0];
      if (SUPPORTED[base]) {
        chosen = base;
        break;
      }
    }
  }
  var root = document.documentElement;
  root.lang = chosen;
  root.dir = SUPPORTED[chosen];
  // Until i18n.js has put the page's words in, a page not in English stays hidden (CSS
  // shows it after a second anyway, should the modules fail to load).
  if (chosen !== 'en') root.classList.add('i18n-pending');
})();
